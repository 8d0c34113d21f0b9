// Issue 3 benchmark: pack a ~300 MB directory tree into a gzip layer.
// pare (read tree, deterministic tar, gzip -6, sha256 of tar and of gzip, atomic blob write) vs
// `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c | gzip -6` vs `umoci repack`, in one run.
// Goal: pare ≤ 1.0× the wall time of tar|gzip, peak RSS ≤ 200 MiB.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { have, type Measure, measure, report } from './lib.ts';

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
const pare = measure('pare', node, [resolve('bench/pack-pare.ts'), data, join(work, 'layout')], {
  before: () => rmSync(join(work, 'layout'), { recursive: true, force: true }),
});
const tarGzip = measure('tar | gzip -6', 'sh', [
  '-c',
  `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "${data}" -c . | gzip -6 > "${join(work, 'out.tar.gz')}"`,
]);
results.push(tarGzip);
if (have('umoci')) {
  const layout = join(work, 'umoci');
  execFileSync('umoci', ['init', '--layout', layout]);
  execFileSync('umoci', ['new', '--image', `${layout}:t`]);
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, bundle]);
  execFileSync('cp', ['-a', `${data}/.`, join(bundle, 'rootfs')]);
  results.push(measure('umoci repack', 'umoci', ['repack', '--image', `${layout}:t`, bundle], { runs: 1 }));
}
report(`pack ${(total / 2 ** 20).toFixed(0)} MiB into a gzip layer`, pare, results, [
  `pare ≤ 1.0× tar|gzip wall time: ${(pare.seconds / tarGzip.seconds).toFixed(2)}× → ${pare.seconds <= tarGzip.seconds ? 'met' : 'NOT met'}`,
  `pare peak RSS ≤ 200 MiB: ${pare.rssMiB?.toFixed(0) ?? '?'} MiB → ${(pare.rssMiB ?? Infinity) <= 200 ? 'met' : 'NOT met'}`,
]);
rmSync(work, { recursive: true, force: true });
