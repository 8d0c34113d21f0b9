import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseControl } from '../../src/debian/control.ts';
import { type PackageSource, PackageUniverse, resolveDependencies } from '../../src/debian/resolve.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';

/**
 * The resolver against the real apt: a throwaway apt root (empty dpkg status, our own lists and cache) pointed at the
 * same mirror(s) as the host's apt sources — read from /etc/apt, never written down here — is updated once, then
 * `apt-get install --simulate PKG` and `resolveDependencies` must pick the same packages at the same versions.
 * The lists apt downloaded (already checked by apt against the signed InRelease) are the indexes we resolve over, so
 * this test does not depend on pare's own archive client.
 */

const peers = peersOrSkip('apt-get', 'dpkg');
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const PACKAGES = ['python3', 'nodejs', 'ca-certificates', 'openjdk-17-jre-headless'];

interface AptSource {
  readonly uri: string;
  readonly suite: string;
  readonly signedBy: string;
}

/** The host's Debian `deb` sources for its own release (suite, -updates, -security), main component only. */
function hostSources(codename: string): AptSource[] {
  const out: AptSource[] = [];
  const want = (s: string) => s === codename || s.startsWith(`${codename}-`);
  const add = (uri: string, suite: string, components: string[], signedBy?: string) => {
    if (want(suite) && components.includes('main')) out.push({ uri, suite, signedBy: signedBy ?? KEYRING });
  };
  const listFiles = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  const parts = existsSync(dir) ? readdirSync(dir).sort() : [];
  listFiles.push(...parts.filter((f) => f.endsWith('.list')).map((f) => join(dir, f)));
  for (const f of listFiles) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const m = /^\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line.replace(/#.*/, ''));
      if (!m) continue;
      const signed = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
      add(m[2]!, m[3]!, m[4]!.trim().split(/\s+/), signed);
    }
  }
  for (const f of parts.filter((x) => x.endsWith('.sources')).map((x) => join(dir, x))) {
    for (const p of parseControl(readFileSync(f, 'utf8'), { source: f, comments: true })) {
      if (!(p.get('Types') ?? '').split(/\s+/).includes('deb')) continue;
      if ((p.get('Enabled') ?? 'yes').toLowerCase() === 'no') continue;
      for (const uri of (p.get('URIs') ?? '').split(/\s+/).filter(Boolean)) {
        for (const suite of (p.get('Suites') ?? '').split(/\s+/).filter(Boolean)) {
          add(uri, suite, (p.get('Components') ?? '').split(/\s+/), p.get('Signed-By'));
        }
      }
    }
  }
  return out;
}

function osCodename(): string {
  const m = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  return m?.[1] ?? '';
}

const codename = existsSync('/etc/os-release') ? osCodename() : '';
const sources = codename ? hostSources(codename) : [];
const skip = peers.skip || sources.length === 0;
if (!peers.skip && sources.length === 0) console.warn('[skip] no Debian apt sources on this host');

describe.skipIf(skip)('resolveDependencies agrees with apt-get install --simulate', () => {
  let root = '';
  let aptOptions: string[] = [];
  let universe: PackageUniverse;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'pare-apt-'));
    for (const d of ['lists/partial', 'cache/archives/partial'])
      mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'status'), '');
    writeFileSync(
      join(root, 'sources.list'),
      sources.map((s) => `deb [signed-by=${s.signedBy}] ${s.uri} ${s.suite} main\n`).join(''),
    );
    const arch = runPeer(peers.paths.dpkg!, ['--print-architecture']).trim();
    aptOptions = [
      `-oDir::State::Lists=${root}/lists`,
      `-oDir::State::Status=${root}/status`,
      `-oDir::Etc::SourceList=${root}/sources.list`,
      '-oDir::Etc::SourceParts=/dev/null',
      `-oDir::Cache=${root}/cache`,
      '-oAPT::Install-Recommends=false',
      `-oAPT::Architecture=${arch}`,
      `-oAPT::Architectures=${arch}`,
      '-oAcquire::Languages=none',
      '-oAcquire::GzipIndexes=false',
      '-oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false',
      '-oAPT::Sandbox::User=root',
    ];
    runPeer(peers.paths['apt-get']!, [...aptOptions, '-q', 'update']);
    const lists = readdirSync(join(root, 'lists'))
      .filter((f) => f.endsWith('_Packages'))
      .sort();
    expect(lists.length).toBe(sources.length);
    const indexes: PackageSource[] = lists.map((f) => ({
      suite: /_dists_(.+?)_main_binary-/.exec(f)![1]!,
      paragraphs: parseControl(readFileSync(join(root, 'lists', f), 'utf8'), { source: f }),
    }));
    universe = new PackageUniverse(indexes, { architectures: [arch] });
  }, 300_000);

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function aptSelection(pkg: string): string[] {
    const out = execFileSync(peers.paths['apt-get']!, [...aptOptions, 'install', '--simulate', pkg], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      env: { ...process.env, LC_ALL: 'C' },
    });
    return [...out.matchAll(/^Inst (\S+) \((\S+) /gm)].map((m) => `${m[1]}=${m[2]}`).sort();
  }

  // note: apt with an empty status installs no Essential/required packages either, so no difference needs explaining;
  // versions are compared too (the security suite must win wherever it has a newer build).
  it.each(PACKAGES)('selects the same packages and versions for %s', (pkg) => {
    const ours = resolveDependencies(universe, [pkg]).packages.map((p) => `${p.name}=${p.version}`);
    const apt = aptSelection(pkg);
    expect(apt.length).toBeGreaterThan(0);
    expect(ours.sort()).toEqual(apt);
  });

  it('explains every selected package with a chain from the request', () => {
    const r = resolveDependencies(universe, ['python3']);
    for (const p of r.packages) {
      const chains = r.why(p.name);
      expect(chains.length, p.name).toBeGreaterThan(0);
      for (const c of chains) {
        expect(c[0]!.package).toBe('python3');
        expect(c.at(-1)!.package).toBe(p.name);
      }
    }
  });
});
