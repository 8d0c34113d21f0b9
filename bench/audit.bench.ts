/**
 * `pare audit /usr/bin` against `checksec --dir=/usr/bin` and hardening-check over the same ELF files, in one run.
 * Prints wall times, the ratios and pare's peak RSS. Run alone: `npx node bench/audit.bench.ts`.
 * pare runs in a child process so its peak RSS (getrusage maxrss) is its own.
 */
import { execFile, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DIR = process.argv[2] ?? '/usr/bin';
const node = process.execPath;
const pare = resolve(import.meta.dirname, '../bin/pare.ts');

function timed(cmd: string, args: string[]): { ms: number; stdout: string; maxRssKb: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  const lines = r.stderr.trim().split('\n');
  return { ms, stdout: r.stdout, maxRssKb: Number(lines[lines.length - 1]) };
}

const p = timed(node, [pare, 'audit', DIR, '--json', '--no-color']);
const report = JSON.parse(p.stdout) as { files: { path: string }[] };
const elfs = report.files.map((f) => f.path).filter((f) => !f.slice(DIR.length + 1).includes('/'));
const pFast = timed(node, [pare, 'audit', DIR, '--json', '--no-closure', '--no-scan-code']);
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
console.log(`ELF files in ${DIR}: ${report.files.length}`);
console.log(
  `pare audit (hardening + closure + imports + code scan): ${s(p.ms)}  ${(report.files.length / (p.ms / 1000)).toFixed(0)} files/s  peak RSS ${(p.maxRssKb / 1024).toFixed(0)} MB`,
);
console.log(
  `pare audit --no-closure --no-scan-code (checksec's columns): ${s(pFast.ms)}  peak RSS ${(pFast.maxRssKb / 1024).toFixed(0)} MB`,
);
console.log(
  `checksec --dir: ${s(c.ms)}  → pare full is ${(c.ms / p.ms).toFixed(1)}× faster, checksec-columns-only ${(c.ms / pFast.ms).toFixed(1)}× faster`,
);
console.log(
  `hardening-check (${elfs.length} files, 2 parallel): ${s(hMs)}  → pare full is ${(hMs / p.ms).toFixed(1)}× faster`,
);
