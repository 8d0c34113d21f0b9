// Start-up: `pare --version` as users run it (issue 15 §1, issue 16 §4; goal ≤ 50 ms), against crane, a static Go
// binary, measured in the same run, and Node's own floor (`node -e 0`) that no Node program starts below:
//   - the installed package: `npm pack` + `npm install -g` into a temp prefix (test/helpers/installed.ts), run
//     through its bin on the pinned Node, with a warm compile cache;
//   - the clone's bin (TypeScript sources through the compile cache);
//   - the single executable, as `npm run package` builds it.
// Best of PARE_BENCH_RUNS (default 20) after a warm-up run. Run alone: `npx node bench/startup.bench.ts`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PINNED_NODE, packAndInstall } from '../test/helpers/installed.ts';
import { have, type Measure, measure, pareArgs, report, summarize } from './lib.ts';

const RUNS = Number(process.env.PARE_BENCH_RUNS ?? 20);
const GOAL_S = 0.05;
const ROOT = resolve(import.meta.dirname, '..');

const work = mkdtempSync(join(tmpdir(), 'pare-bench-startup-'));
try {
  process.stdout.write('packing and installing pare, building the single executable…\n');
  const inst = packAndInstall(work);
  execFileSync(PINNED_NODE, [join(ROOT, 'scripts/package.ts'), join(work, 'sea')], { stdio: 'ignore' });
  const exe = (dir: string) => join(work, dir, `pare-linux-${arch()}`);

  const opts = { runs: RUNS, warm: true };
  const installed = measure('pare --version (npm package)', inst.bin, ['--version'], {
    ...opts,
    env: { PATH: inst.path, HOME: work },
  });
  const rows: Measure[] = [
    measure('pare --version (clone, sources)', process.execPath, pareArgs('--version'), opts),
    measure('pare --version (single executable)', exe('sea'), ['--version'], opts),
    measure('node -e 0 (the floor of any Node program)', PINNED_NODE, ['-e', '0'], opts),
  ];
  const crane = have('crane') ? measure('crane version', 'crane', ['version'], opts) : undefined;
  if (!crane) process.stdout.write('skip crane: not installed (the ratio to a peer is not printed)\n');
  report('start-up', installed, crane ? [...rows, crane] : rows, [
    `≤ ${GOAL_S * 1000} ms for the installed bin and the single executable (crane: ~10 ms)`,
  ]);
  for (const m of [installed, rows[1]!]) {
    const vsCrane = crane ? `, ${(m.seconds / crane.seconds).toFixed(1)}× crane` : '';
    summarize({
      work: `start-up ${m.name}`,
      measured: `${(m.seconds * 1000).toFixed(0)} ms${vsCrane}`,
      goal: `≤ ${GOAL_S * 1000} ms`,
      met: m.seconds <= GOAL_S,
    });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
