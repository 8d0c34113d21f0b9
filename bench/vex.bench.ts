/**
 * Precision of `pare vex` on the curl, python3 and git images pare builds from the Debian archive (the host's apt
 * sources): every (CVE, binary package) pair of the shipped data (src/vex/data) whose package the image has is a
 * finding (pare gets them all; those of absent packages are not counted). pare's statement for each is set against
 * an INDEPENDENT verdict made without pare's code — umoci unpacks the image, the dpkg status files say what is
 * installed, `dpkg --compare-versions` compares with the data's fixed version, and readelf lists what every ELF file
 * imports:
 *   inapplicable = package not installed, or no library file of the entry in the image, or the fixed version
 *                  installed, or (function-level) no ELF file other than the CVE's libraries imports a listed function;
 *   applicable   = otherwise.
 * A `not_affected` for an applicable finding is wrong. Goal: 0 wrong, and ≥ 60% of the inapplicable ones proven.
 * Run alone: `node bench/vex.bench.ts`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shippedVexData } from '../src/vex/index.ts';
import {
  readelfFacts,
  readelfImporters,
  unpackWithUmoci,
  VEX_IMAGES,
  type VexImageName,
  writeVexProject,
} from '../test/helpers/vex-images.ts';
import { PARE_BIN, PARE_NODE_FLAGS, summarize } from './lib.ts';

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const tools = { umoci: which('umoci'), readelf: which('readelf'), dpkg: which('dpkg') };
const missing = Object.entries(tools).filter(([, p]) => !p);
if (missing.length > 0) {
  process.stdout.write(`skipped: ${missing.map(([n]) => n).join(', ')} not installed\n`);
  process.exit(0);
}

const pare = (args: string[]) =>
  execFileSync(process.execPath, [...PARE_NODE_FLAGS, PARE_BIN, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

/** Installed packages from an unpacked root's dpkg status files: name → version and source version. */
function installed(root: string): Map<string, { version: string; sourceVersion: string }> {
  const out = new Map<string, { version: string; sourceVersion: string }>();
  const d = join(root, 'var/lib/dpkg/status.d');
  for (const f of readdirSync(d).filter((x) => !x.endsWith('.md5sums'))) {
    for (const stanza of readFileSync(join(d, f), 'utf8').split(/\n\n+/)) {
      const name = /^Package: (.+)$/m.exec(stanza)?.[1];
      const version = /^Version: (.+)$/m.exec(stanza)?.[1];
      const source = /^Source: \S+(?: \((.+)\))?$/m.exec(stanza);
      if (name && version) out.set(name, { version, sourceVersion: source?.[1] ?? version });
    }
  }
  return out;
}

const data = shippedVexData();
const pairs = [...data.byId.values()].flatMap((es) =>
  es.flatMap((e) => e.binaries.map((b) => ({ e, pkg: b }))),
);
const work = mkdtempSync(join(tmpdir(), 'pare-vex-bench-'));
let wrongAll = 0;
let provenAll = 0;
let inapplicableAll = 0;
try {
  const list = join(work, 'findings.txt');
  writeFileSync(list, pairs.map((p) => `${p.e.id} ${p.pkg}\n`).join(''));
  process.stdout.write(
    `\n## pare vex precision: ${pairs.length} findings (${data.entries} data entries, ${data.files.length} files)\n`,
  );
  for (const name of Object.keys(VEX_IMAGES) as VexImageName[]) {
    const layout = join(work, `${name}-img`);
    pare(['build', writeVexProject(work, name), '-o', layout, '-q']);
    const root = join(work, `${name}-root`);
    unpackWithUmoci(tools.umoci!, layout, name, root);
    const pkgs = installed(root);
    const elf = readelfFacts(tools.readelf!, root);
    const files = new Set(execFileSync('find', [root, '-printf', '%f\n'], { encoding: 'utf8' }).split('\n'));
    const codename = /^VERSION_CODENAME=(.+)$/m.exec(readFileSync(join(root, 'etc/os-release'), 'utf8'))?.[1];
    const t0 = performance.now();
    pare(['vex', `oci:${layout}:${name}`, '--report', list, '-o', join(work, `${name}.vex.json`)]);
    const seconds = (performance.now() - t0) / 1000;
    const doc = JSON.parse(readFileSync(join(work, `${name}.vex.json`), 'utf8')) as {
      statements: {
        vulnerability: { name: string };
        products: { subcomponents?: { '@id': string }[] }[];
        status: string;
        justification?: string;
      }[];
    };
    let wrong = 0;
    let proven = 0;
    let inapplicable = 0;
    const rows: string[] = [];
    const byStatus = new Map<string, number>();
    // A scanner reports only packages the image has: the findings of the others (component_not_present by the
    // dpkg database alone) would flatter the ratio.
    const mine = pairs.filter((x) => pkgs.has(x.pkg));
    for (const { e, pkg } of mine) {
      const p = pkgs.get(pkg);
      const fixed = codename ? e.fixed?.[codename] : undefined;
      const why = !p
        ? 'not installed'
        : !e.libraries.some((l) => files.has(l))
          ? 'library absent'
          : fixed && spawnSync(tools.dpkg!, ['--compare-versions', p.sourceVersion, 'ge', fixed]).status === 0
            ? `fixed (${fixed})`
            : e.reachability === 'function-level' &&
                readelfImporters(elf, e.functions, e.libraries).length === 0
              ? 'no importer (readelf)'
              : undefined;
      const s = doc.statements.find(
        (x) =>
          x.vulnerability.name === e.id &&
          x.products.some((pr) =>
            pr.subcomponents?.some(
              (c) => c['@id'].startsWith(`pkg:deb/debian/${pkg}@`) || c['@id'] === `pkg:deb/debian/${pkg}`,
            ),
          ),
      );
      const status = s ? (s.justification ? `${s.status}/${s.justification}` : s.status) : 'missing';
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      if (why) inapplicable++;
      if (s?.status === 'not_affected') {
        if (why) proven++;
        else wrong++;
      }
      rows.push(
        `  ${e.id} ${pkg}: pare ${status}; independent: ${why ? `inapplicable, ${why}` : 'applicable'}`,
      );
    }
    wrongAll += wrong;
    provenAll += proven;
    inapplicableAll += inapplicable;
    const pct = inapplicable > 0 ? ((100 * proven) / inapplicable).toFixed(0) : '-';
    process.stdout.write(
      `${name}: ${mine.length} findings on installed packages, ${inapplicable} inapplicable (independent), ${proven} proven not_affected (${pct}%), ${wrong} wrong not_affected; pare vex ${seconds.toFixed(2)} s for ${pairs.length} findings\n`,
    );
    for (const [k, n] of [...byStatus].sort()) process.stdout.write(`  ${k}: ${n}\n`);
    if (process.env.PARE_BENCH_VERBOSE === '1')
      process.stdout.write(`${rows.map((r) => `  ${r}`).join('\n')}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const pct = inapplicableAll > 0 ? (100 * provenAll) / inapplicableAll : 0;
summarize({
  work: `pare vex precision (curl, python3, git; data findings on installed packages)`,
  measured: `${wrongAll} wrong not_affected; ${provenAll}/${inapplicableAll} inapplicable proven (${pct.toFixed(0)}%)`,
  goal: '0 wrong not_affected, ≥ 60% of inapplicable proven',
  met: wrongAll === 0 && pct >= 60,
});
