// `npm run bench`: runs every bench/*.bench.ts in turn on the pinned Node, each in its own process, then prints the
// summary rows they reported (bench/lib.ts `summarize`): goal against measured, from this run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SummaryRow } from './lib.ts';

const only = process.argv.slice(2);
const files = readdirSync(import.meta.dirname)
  .filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.startsWith(o))))
  .sort();
const dir = mkdtempSync(join(tmpdir(), 'pare-bench-summary-'));
const summary = join(dir, 'rows.jsonl');
let failed = 0;
try {
  for (const f of files) {
    process.stdout.write(`\n# ${f}\n`);
    const r = spawnSync(process.execPath, [join(import.meta.dirname, f)], {
      stdio: 'inherit',
      env: { ...process.env, PARE_BENCH_SUMMARY: summary },
    });
    if (r.status !== 0) failed++;
  }
  let rows: SummaryRow[] = [];
  try {
    rows = readFileSync(summary, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SummaryRow);
  } catch {
    // no bench reported a row
  }
  if (rows.length > 0) {
    const table = [
      ['work', 'measured', 'goal', 'met'],
      ...rows.map((r) => [r.work, r.measured, r.goal, r.met ? 'yes' : 'NO']),
    ];
    const w = [0, 1, 2, 3].map((i) => Math.max(...table.map((r) => r[i]!.length)));
    process.stdout.write('\n# summary\n');
    for (const r of table) process.stdout.write(`${r.map((c, i) => c.padEnd(w[i]!)).join('  ')}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed > 0 ? 1 : 0;
