/**
 * Issue 20 benchmark: a cold CI runner building three examples (hello, python, node) with `--locked`, its .debs
 * taken either from the Debian mirror or from a registry cache (`pare build --cache`, a loopback distribution
 * registry filled by an earlier runner). Both runs start from an empty $XDG_CACHE_HOME and must give the same digests.
 *
 * The mirror comes from pare's own lookup (pare.yaml, PARE_DEBIAN_MIRROR, else the host's apt sources); no host is
 * written here. Wall times on this shared machine vary; compare the ratio of one run. PARE_BENCH_RUNS (default 2).
 * Run alone: `npx node bench/registry-cache.bench.ts`.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { peer } from '../test/helpers/peers.ts';
import { startRegistry } from '../test/helpers/registry-server.ts';
import { cpuRatio, measure, pareArgs, report, summarize } from './lib.ts';

const NODE = resolve(import.meta.dirname, '../node_modules/.bin/node');
const RUNS = Number(process.env.PARE_BENCH_RUNS ?? 2);
const EXAMPLES = ['hello', 'python', 'node'];

if (!peer('registry')) {
  console.log('skip: the distribution registry ("registry" / "docker-registry") is not installed');
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'pare-bench-registry-cache-'));
const registry = await startRegistry({ auth: 'none' });
const repo = `${registry.host}/bench/pare-cache`;
const cache = join(work, 'cache');
const out = join(work, 'out');
const projects = EXAMPLES.map((e) => join(work, 'projects', e));
const digests = () =>
  (JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests
    .map((m) => m.digest)
    .sort()
    .join(' ');
const fresh = () => {
  for (const d of [cache, out]) rmSync(d, { recursive: true, force: true });
};

try {
  for (const [n, e] of EXAMPLES.entries())
    cpSync(resolve(import.meta.dirname, '../examples', e), projects[n]!, { recursive: true });
  // The first runner: resolves (writes the locks) and fills the registry cache.
  const first = measure(
    'first runner (mirror, fills the cache)',
    NODE,
    pareArgs('build', ...projects, '-o', out, '-q', '--cache', repo),
    { runs: 1, env: { ...process.env, XDG_CACHE_HOME: cache }, before: fresh },
  );
  const want = digests();
  const seen: string[] = [];
  const run = (name: string, extra: readonly string[]) =>
    measure(name, NODE, pareArgs('build', ...projects, '-o', out, '-q', '--locked', ...extra), {
      runs: RUNS,
      env: { ...process.env, XDG_CACHE_HOME: cache, PARE_CACHE: '' },
      before: () => {
        if (existsSync(join(out, 'index.json'))) seen.push(digests());
        fresh();
      },
    });
  const mirror = run('cold runner, .debs from the mirror', []);
  seen.push(digests());
  const shared = run('cold runner, .debs from the registry cache', ['--cache', repo]);
  seen.push(digests());
  const same = seen.every((d) => d === want);
  console.log(
    `first runner: ${first.seconds.toFixed(2)} s; images ${want} (${same ? 'identical' : 'DIFFERENT'})`,
  );
  report(
    `pare build --locked of ${EXAMPLES.join(', ')} on an empty cache`,
    shared,
    [mirror],
    [
      `registry cache vs mirror: ${(shared.seconds / mirror.seconds).toFixed(2)}× wall, ${cpuRatio(shared, mirror)}`,
    ],
  );
  summarize({
    work: `cold --locked build of ${EXAMPLES.length} examples, .debs from a registry cache vs the mirror`,
    measured: `${(shared.seconds / mirror.seconds).toFixed(2)}× (${shared.seconds.toFixed(2)} s vs ${mirror.seconds.toFixed(2)} s), ${same ? 'same digests' : 'DIFFERENT digests'}`,
    goal: '< 1×, same digests',
    met: shared.seconds < mirror.seconds && same,
  });
  if (!same) process.exitCode = 1;
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}
