// Pack a ~300 MB directory tree into a gzip layer.
// pare (read tree, deterministic tar, parallel deterministic gzip -6, sha256 of tar and of gzip, atomic blob write) vs
// `umoci repack` (parallel gzip, pgzip) and `tar --sort=name … | gzip -6` (one thread), in one run. pare is also
// measured with one compression thread (PARE_COMPRESS_THREADS=1: the same bytes) to show what the threads bring.
// Goals: pare ≤ 1.0× umoci repack's wall time, peak RSS ≤ 200 MiB.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuRatio, have, type Measure, measure, report, summarize } from './lib.ts';

const TARGET = Number(process.env.PARE_BENCH_PACK_MB ?? 300) << 20;
const work = mkdtempSync(join(tmpdir(), 'pare-bench-pack-'));
const data = join(work, 'data');
mkdirSync(data);
// Real files (libraries, data, text) from the host's /usr, in sorted order, until the target size.
let total = 0;
const walk = (dir: string): void => {
  for (const name of readdirSync(dir).sort()) {
    if (total >= TARGET) return;
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(p);
    else if (st.isFile() && st.size < 64 << 20) {
      const to = join(data, p.slice('/usr/'.length));
      mkdirSync(join(to, '..'), { recursive: true });
      cpSync(p, to);
      total += st.size;
    }
  }
};
walk('/usr/lib/x86_64-linux-gnu');
walk('/usr/share');
process.stdout.write(`input: ${(total / 2 ** 20).toFixed(0)} MiB in ${data}\n`);

const node = resolve('node_modules/.bin/node');
const results: Measure[] = [];
const packArgs = [resolve('bench/pack-pare.ts'), data, join(work, 'layout')];
const clean = () => rmSync(join(work, 'layout'), { recursive: true, force: true });
const pare = measure(`pare (${availableParallelism()} threads)`, node, packArgs, { before: clean });
results.push(
  measure('pare, 1 compression thread', node, packArgs, {
    before: clean,
    runs: 1,
    env: { ...process.env, PARE_COMPRESS_THREADS: '1' },
  }),
);
const tarGzip = measure('tar | gzip -6', 'sh', [
  '-c',
  `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "${data}" -c . | gzip -6 > "${join(work, 'out.tar.gz')}"`,
]);
results.push(tarGzip);
let umoci: Measure | undefined;
if (have('umoci')) {
  const layout = join(work, 'umoci');
  execFileSync('umoci', ['init', '--layout', layout]);
  execFileSync('umoci', ['new', '--image', `${layout}:t`]);
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, bundle]);
  execFileSync('cp', ['-a', `${data}/.`, join(bundle, 'rootfs')]);
  umoci = measure('umoci repack', 'umoci', ['repack', '--image', `${layout}:t`, bundle], { runs: 1 });
  results.push(umoci);
}
report(`pack ${(total / 2 ** 20).toFixed(0)} MiB into a gzip layer`, pare, results, [
  umoci
    ? `pare ≤ 1.0× umoci repack wall time: ${(pare.seconds / umoci.seconds).toFixed(2)}× → ${pare.seconds <= umoci.seconds ? 'met' : 'NOT met'}`
    : 'pare ≤ 1.0× umoci repack: umoci not installed, not measured',
  `pare peak RSS ≤ 200 MiB: ${pare.rssMiB?.toFixed(0) ?? '?'} MiB → ${(pare.rssMiB ?? Infinity) <= 200 ? 'met' : 'NOT met'}`,
]);
if (umoci)
  summarize({
    work: `pack ${(total / 2 ** 20).toFixed(0)} MiB into a gzip layer, vs umoci repack`,
    measured: `${(pare.seconds / umoci.seconds).toFixed(2)}× (${pare.seconds.toFixed(2)} s vs ${umoci.seconds.toFixed(2)} s); ${cpuRatio(pare, umoci)}`,
    goal: '≤ 1.0×',
    met: pare.seconds <= umoci.seconds,
  });
summarize({
  work: `pack ${(total / 2 ** 20).toFixed(0)} MiB into a gzip layer, peak RSS`,
  measured: `${pare.rssMiB?.toFixed(0) ?? '?'} MiB`,
  goal: '≤ 200 MiB',
  met: (pare.rssMiB ?? Infinity) <= 200,
});
rmSync(work, { recursive: true, force: true });
