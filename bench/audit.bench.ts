/**
 * `pare audit /usr/bin` against `checksec --dir=/usr/bin` and hardening-check over the same ELF files, in one run.
 * Prints wall times, files/s, the ratios and pare's peak RSS for four pare runs: the full --json report, the JSON with
 * checksec's columns only, the default table, and the table of exactly checksec's columns (--no-closure).
 * Run alone: `npx node bench/audit.bench.ts [DIR]`.
 * pare runs in a child process under GNU time (`%M`), so its peak RSS is its own; best time of 3 runs, highest RSS.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { PARE_BIN, PARE_NODE_FLAGS, summarize } from './lib.ts';

const run = promisify(execFile);
const DIR = process.argv[2] ?? '/usr/bin';
const node = process.execPath;
// Run pare as its bin runs: with the node options of its shebang, on this Node.
const pare = PARE_BIN;
const nodeFlags = PARE_NODE_FLAGS;

function timed(cmd: string, args: string[]): { ms: number; stdout: string; maxRssKb: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  const lines = r.stderr.trim().split('\n');
  return { ms, stdout: r.stdout, maxRssKb: Number(lines[lines.length - 1]) };
}

/**
 * Runs pare `RUNS` times (after one untimed run that warms the page cache and the compile cache) and returns the best
 * time, as bench/lib.ts does on this shared machine, with the highest peak RSS of all runs (the conservative one).
 */
const RUNS = 3;
function pareRuns(args: string[]): { ms: number; stdout: string; maxRssKb: number } {
  timed(node, [...nodeFlags, pare, ...args]);
  const runs = Array.from({ length: RUNS }, () => timed(node, [...nodeFlags, pare, ...args]));
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  return { ...best, maxRssKb: Math.max(...runs.map((r) => r.maxRssKb)) };
}

const p = pareRuns(['audit', DIR, '--json', '--no-color']);
const report = JSON.parse(p.stdout) as { files: { path: string }[] };
const elfs = report.files.map((f) => f.path).filter((f) => !f.slice(DIR.length + 1).includes('/'));
const pFast = pareRuns(['audit', DIR, '--json', '--no-closure', '--no-scan-code']);
const pTable = pareRuns(['audit', DIR, '--no-color']);
const pCols = pareRuns(['audit', DIR, '--no-closure', '--no-color']);
// The same files as an image (one layer under /usr/bin): lint and classification run on images only, so this pair
// measures what they add to the table run.
const image = await (async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { readHostDir, TreeBuilder } = await import('../src/fstree/index.ts');
  const { buildImage, layerFromTree } = await import('../src/oci/index.ts');
  const { OciLayout } = await import('../src/layout/index.ts');
  const host = await readHostDir(DIR);
  const b = new TreeBuilder();
  for (const p of host.paths()) {
    const e = host.get(p)!;
    if (p !== '/') b.put(`/usr/bin${p}`, e.kind === 'hardlink' ? { ...e, target: `/usr/bin${e.target}` } : e);
  }
  const img = buildImage({
    layers: [layerFromTree(b.build())],
    platform: { os: 'linux', architecture: 'amd64' },
    config: { User: '65532' },
  });
  const dir = join(mkdtempSync(join(tmpdir(), 'pare-audit-bench-')), 'layout');
  await (await OciLayout.create(dir)).writeArtifact({ kind: 'image', image: img }, { tag: 't' });
  return `oci:${dir}:t`;
})();
const pImage = pareRuns(['audit', image, '--no-color']);
const pImageNoLint = pareRuns(['audit', image, '--no-color', '--no-lint']);
const c = timed('checksec', ['--output=json', `--dir=${DIR}`]);

// hardening-check over the same files: 2 at a time (2 cores), like the parity test.
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 2 }, async () => {
    while (next < elfs.length) {
      const f = elfs[next++]!;
      await run('hardening-check', [f], { maxBuffer: 1 << 26 }).catch(() => undefined);
    }
  }),
);
const hMs = performance.now() - t0;

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const rate = (ms: number) => `${(report.files.length / (ms / 1000)).toFixed(0)} files/s`;
const rss = (kb: number) => `peak RSS ${(kb / 1024).toFixed(0)} MB`;
console.log(
  `ELF files in ${DIR}: ${report.files.length}; pare runs as node ${[...nodeFlags, 'bin/pare.js'].join(' ')}`,
);
console.log(
  `pare audit --json (hardening + closure + imports + packages + code scan): ${s(p.ms)}  ${rate(p.ms)}  ${rss(p.maxRssKb)}`,
);
console.log(
  `pare audit --json --no-closure --no-scan-code (checksec's columns): ${s(pFast.ms)}  ${rate(pFast.ms)}  ${rss(pFast.maxRssKb)}`,
);
console.log(
  `pare audit (table: checksec's columns + closure): ${s(pTable.ms)}  ${rate(pTable.ms)}  ${rss(pTable.maxRssKb)}`,
);
console.log(
  `pare audit --no-closure (table of exactly checksec's columns): ${s(pCols.ms)}  ${rate(pCols.ms)}  ${rss(pCols.maxRssKb)}`,
);
console.log(
  `pare audit IMAGE (same files as one layer; table + lint + classification): ${s(pImage.ms)}  ${rss(pImage.maxRssKb)}; --no-lint ${s(pImageNoLint.ms)} → lint+classification add ${(((pImage.ms - pImageNoLint.ms) / pImageNoLint.ms) * 100).toFixed(0)}%; checksec is ${(c.ms / pImage.ms).toFixed(1)}× slower than the image run`,
);
console.log(
  `checksec --dir: ${s(c.ms)}  ${rate(c.ms)}  → pare --json full is ${(c.ms / p.ms).toFixed(1)}× faster, table ${(c.ms / pTable.ms).toFixed(1)}×, --json columns ${(c.ms / pFast.ms).toFixed(1)}×, table of checksec's columns ${(c.ms / pCols.ms).toFixed(1)}× (goal ≥ 50×, ≥ 1000 files/s, ≤ 200 MB)`,
);
summarize({
  work: `pare audit --json of ${report.files.length} ELF files, vs checksec --dir`,
  measured: `${(c.ms / p.ms).toFixed(1)}× faster, ${rate(p.ms)}, ${rss(p.maxRssKb)}`,
  goal: '≥ 50× faster, ≥ 1000 files/s, ≤ 200 MB',
  met: c.ms / p.ms >= 50 && report.files.length / (p.ms / 1000) >= 1000 && p.maxRssKb / 1024 <= 200,
});
console.log(
  `hardening-check (${elfs.length} files, 2 parallel): ${s(hMs)}  → pare full is ${(hMs / p.ms).toFixed(1)}× faster`,
);
