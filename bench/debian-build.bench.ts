/**
 * Issue 4 benchmark: building examples/python (a `packages:` image) from the configured Debian mirror.
 *
 *   pare cold   `pare build` with an empty cache ($XDG_CACHE_HOME in a fresh temp dir) and no pare.lock: InRelease
 *               verify, Packages fetch + scan, resolution, lock, .deb downloads, assembly, slicing, layer, layout.
 *   pare warm   the same command again with that cache and the lock it wrote; the image digest must not change.
 *   peers       mmdebstrap into the rootfs of a umoci bundle, then `umoci repack` (a gzip layer in an OCI layout):
 *               - `--variant=custom --include='?essential' --include=<pare.yaml packages>`: the peer. With
 *                 custom alone dpkg cannot run maintainer scripts (no sh, rm, sed, diff in the chroot), so the
 *                 Essential set is included, as mmdebstrap(1) says a custom install needs.
 *               - `--variant=extract --include=<pare.yaml packages>`: unpacks the same packages without maintainer
 *                 scripts, like pare; the stricter comparison.
 *
 * The mirror and suites come from pare's own lookup (pare.yaml, PARE_DEBIAN_MIRROR, else the host's apt sources), so
 * pare and the peers read the same archive; no host is written here. All measures are taken in one run on this
 * (shared, loaded) machine: compare the ratios, not the seconds. Prints times, ratios, pare's peak RSS (GNU time) and
 * the image digest; asserts nothing but the warm digest. mmdebstrap is installed with apt-get when missing (root
 * only). Run alone: `npx node bench/debian-build.bench.ts`; PARE_BENCH_RUNS (default 2) sets runs per measure.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { debianSource } from '../src/build/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { resolveSuites } from '../src/debian/index.ts';
import { have, type Measure, measure, pareArgs, report, summarize } from './lib.ts';

const EXAMPLE = resolve(import.meta.dirname, '../examples/python');
const NODE = resolve(import.meta.dirname, '../node_modules/.bin/node');
const RUNS = Number(process.env.PARE_BENCH_RUNS ?? 2);

const loaded = await loadConfig(EXAMPLE);
const source = debianSource(loaded);
const packages = loaded.config.packages ?? [];
let suites: Awaited<ReturnType<typeof resolveSuites>>;
try {
  suites = await resolveSuites(source);
} catch (e) {
  console.log(`skip: no Debian mirror configured: ${(e as Error).message}`);
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'pare-bench-debian-build-'));
const project = join(work, 'python');
const cache = join(work, 'cache');
const out = join(work, 'out');
const env = { ...process.env, XDG_CACHE_HOME: cache };

/** The digest of the image the last build wrote (the layout's only manifest). */
function layoutDigest(): string {
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as {
    manifests: { digest: string }[];
  };
  if (index.manifests.length !== 1)
    throw new Error(`want one manifest in ${out}, got ${index.manifests.length}`);
  return index.manifests[0]!.digest;
}

try {
  // As the bin runs (its shebang's node options, e.g. the young-generation cap that keeps peak RSS down).
  const buildArgs = pareArgs('build', project, '-o', out, '-q');
  const cold = measure('pare cold (empty cache, no lock)', NODE, buildArgs, {
    runs: RUNS,
    env,
    before: () => {
      for (const d of [project, cache, out]) rmSync(d, { recursive: true, force: true });
      cpSync(EXAMPLE, project, { recursive: true });
      rmSync(join(project, 'pare.lock'), { force: true });
      mkdirSync(cache);
    },
  });
  const digest = layoutDigest();
  if (!existsSync(join(project, 'pare.lock'))) throw new Error('pare cold build wrote no pare.lock');

  const warmDigests: string[] = [];
  const warm = measure('pare warm (cache + lock)', NODE, buildArgs, {
    runs: RUNS + 1,
    env,
    before: () => {
      if (existsSync(out)) warmDigests.push(layoutDigest());
      rmSync(out, { recursive: true, force: true });
    },
  });
  warmDigests.push(layoutDigest());
  const same = warmDigests.every((d) => d === digest);

  const peers: Measure[] = [];
  if (!have('mmdebstrap') && process.getuid?.() === 0) {
    spawnSync('apt-get', ['install', '-y', '-qq', 'mmdebstrap'], { stdio: 'ignore' });
  }
  if (have('mmdebstrap') && have('umoci')) {
    const lines = suites.map(
      (s) => `deb ${s.baseUrl} ${s.name} ${(source.components ?? ['main']).join(' ')}`,
    );
    const peer = join(work, 'peer');
    const peerRun = (name: string, variantArgs: readonly string[]) =>
      measure(
        name,
        'sh',
        [
          '-c',
          // umoci unpack makes an empty bundle/rootfs; mmdebstrap fills it; repack writes the layer and manifest.
          'set -e; umoci init --layout "$P/layout"; umoci new --image "$P/layout:t";' +
            ' umoci unpack --image "$P/layout:t" "$P/bundle"; mmdebstrap -q "$@";' +
            ' umoci repack --image "$P/layout:t" "$P/bundle"',
          'sh',
          ...variantArgs,
          source.suite,
          join(peer, 'bundle/rootfs'),
          ...lines,
        ],
        {
          runs: RUNS,
          env: { ...process.env, P: peer },
          before: () => rmSync(peer, { recursive: true, force: true }),
        },
      );
    const include = `--include=${packages.join(',')}`;
    peers.push(peerRun('mmdebstrap custom + umoci', ['--variant=custom', '--include=?essential', include]));
    peers.push(peerRun('mmdebstrap extract + umoci', ['--variant=extract', include]));
  } else {
    console.log('skip peers: mmdebstrap or umoci not installed');
  }

  console.log(`image ${digest} (warm builds: ${warmDigests.length}, ${same ? 'identical' : 'DIFFERENT'})`);
  console.log(`suites: ${suites.map((s) => s.name).join(', ')}; packages: ${packages.join(' ')}`);
  const custom = peers[0];
  const extract = peers[1];
  const ratio = (a: Measure, b: Measure | undefined) => (b ? a.seconds / b.seconds : Number.NaN);
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log(`pare warm: ${warm.seconds.toFixed(2)} s, peak RSS ${warm.rssMiB?.toFixed(0) ?? '?'} MiB`);
  report('examples/python: pare build (cold) vs mmdebstrap + umoci repack', cold, peers, [
    `cold ≤ 0.5× mmdebstrap custom + umoci: ${ratio(cold, custom).toFixed(2)}× → ${met(ratio(cold, custom) <= 0.5)}`,
    `cold vs mmdebstrap extract + umoci (no maintainer scripts): ${ratio(cold, extract).toFixed(2)}×`,
    `warm ≤ 1 s with identical digest: ${warm.seconds.toFixed(2)} s (cold/warm ${(cold.seconds / warm.seconds).toFixed(1)}×), ${same ? 'identical' : 'different'} → ${met(warm.seconds <= 1 && same)}`,
    `peak RSS ≤ 300 MiB: cold ${cold.rssMiB?.toFixed(0) ?? '?'} MiB, warm ${warm.rssMiB?.toFixed(0) ?? '?'} MiB → ${met(Math.max(cold.rssMiB ?? Infinity, warm.rssMiB ?? Infinity) <= 300)}`,
  ]);
  if (extract)
    summarize({
      work: 'cold pare build examples/python vs mmdebstrap extract + umoci',
      measured: `${ratio(cold, extract).toFixed(2)}× (${cold.seconds.toFixed(2)} s vs ${extract.seconds.toFixed(2)} s)`,
      goal: '≤ 0.4×',
      met: ratio(cold, extract) <= 0.4,
    });
  summarize({
    work: 'warm pare build examples/python, same digest',
    measured: `${warm.seconds.toFixed(2)} s, ${same ? 'identical' : 'DIFFERENT'}`,
    goal: '≤ 1 s, identical',
    met: warm.seconds <= 1 && same,
  });
  summarize({
    work: 'pare build examples/python, peak RSS (cold, warm)',
    measured: `${cold.rssMiB?.toFixed(0) ?? '?'} MiB, ${warm.rssMiB?.toFixed(0) ?? '?'} MiB`,
    goal: '≤ 300 MiB',
    met: Math.max(cold.rssMiB ?? Infinity, warm.rssMiB ?? Infinity) <= 300,
  });
  if (!same) {
    console.error(`warm digests ${warmDigests.join(', ')} differ from the cold ${digest}`);
    process.exitCode = 1;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
