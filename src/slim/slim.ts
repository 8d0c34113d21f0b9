import type { Digest } from '../digest/index.ts';
import { SliceError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import {
  buildImage,
  type History,
  type Image,
  imageToTree,
  layerFromTree,
  type RunConfig,
} from '../oci/index.ts';
import { resolveUser } from '../run/index.ts';
import { canonicalName, type Prober, type SliceResult, sliceTree, straceProber } from '../slice/index.ts';
import { type DpkgSummary, dpkgOwners, readDpkgStatus, trimDpkg } from './dpkg.ts';

/**
 * `pare slim`: an image pare did not build → the smallest image that still passes its probes. The source is read
 * and checked (imageToTree), sliced from its own config (Entrypoint/Cmd/Env/WorkingDir, `executables`, the slicer's
 * data rules) plus what the probes touch under strace in the `pare run` sandbox, as the image's user; the dpkg
 * database is trimmed to what is left; then the same probes run again on the slimmed tree, and any failure throws
 * SLICE_SLIM_BROKEN naming the paths the first run touched that are gone and the flag that brings each back. Only a
 * tree that passed is packed into an image: one layer, the source's config, a history entry, annotations naming the
 * source digest and the probes. Deterministic: the same source and options give the same digest.
 */

export interface SlimOptions {
  /** Probe commands as argv lists (src/slim/argv.ts splits the CLI's strings). */
  readonly probes?: readonly (readonly string[])[];
  /** More root programs (names on the image PATH, or paths). */
  readonly executables?: readonly string[];
  readonly keep?: readonly string[];
  readonly drop?: readonly string[];
  /** Keep shells and package-manager tooling when something reaches them, and `/bin/sh`. */
  readonly shell?: boolean;
  readonly locales?: readonly string[];
  /** Longest a probe may run, ms. */
  readonly probeTimeoutMs?: number;
  /** Runs the probes (default: strace + bubblewrap). */
  readonly prober?: Prober;
  /** SOURCE_DATE_EPOCH: the created time of the result and the mtime clamp (default: the source's created time). */
  readonly epoch?: number;
  readonly tmpDir?: string;
}

export interface SlimResult {
  readonly image: Image;
  readonly source: {
    readonly digest: Digest;
    readonly compressed: number;
    readonly layers: readonly number[];
  };
  readonly slice: SliceResult;
  /** Per dpkg package (classic `status`) or status.d key, sorted. */
  readonly packages: readonly DpkgSummary[];
  readonly probes: readonly string[];
}

/** The annotation listing the probes (JSON array of argv lists). */
export const PROBES_ANNOTATION = 'dev.pare.slim.probes';

/** A prober that remembers what each command touched on the first (unsliced) run. */
function recording(inner: Prober): Prober & { touched: string[][] } {
  const self = {
    touched: [] as string[][],
    async trace(tree: Tree, commands: readonly (readonly string[])[], ctx: Parameters<Prober['trace']>[2]) {
      const r = await inner.trace(tree, commands, ctx);
      self.touched = r;
      return r;
    },
  };
  return self;
}

function quote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Returns the slimmed image of `source` (nothing is written; `result.image` is lazy until its digest is asked). */
export async function slimImage(source: Image, options: SlimOptions = {}): Promise<SlimResult> {
  const [config, manifest, digest] = await Promise.all([source.config(), source.manifest(), source.digest()]);
  const rc: RunConfig = config.config ?? {};
  const tree = await imageToTree(source, options.tmpDir ? { spoolDir: options.tmpDir } : {});
  const dec = new TextDecoder();
  const text = async (p: string) => (tree.file(p) ? dec.decode(await tree.readFile(p)) : undefined);
  const user = resolveUser(
    rc.User,
    { passwd: await text('/etc/passwd'), group: await text('/etc/group') },
    'image',
  );
  const env = rc.Env ?? [];
  const cwd = rc.WorkingDir || '/';
  const probes = (options.probes ?? []).map((p) => [...p]);
  const probeOptions = {
    uid: user.uid,
    gid: user.gid,
    ...(options.probeTimeoutMs !== undefined ? { timeoutMs: options.probeTimeoutMs } : {}),
    ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
  };
  const env2 = env.some((e) => e.startsWith('HOME=')) ? env : [...env, `HOME=${user.home}`];
  const prober = recording(options.prober ?? straceProber(probeOptions));
  const dpkg = await readDpkgStatus(tree);
  const slice = await sliceTree(tree, {
    entrypoint: rc.Entrypoint ?? [],
    cmd: rc.Cmd ?? [],
    env: env2,
    workingDir: cwd,
    executables: options.executables ?? [],
    keep: options.keep ?? [],
    drop: options.drop ?? [],
    shell: options.shell ?? false,
    locales: options.locales ?? [],
    probe: probes,
    prober,
    probeOptions,
    ...(dpkg ? { owners: dpkgOwners(tree, dpkg) } : {}),
  });
  let slim = slice.tree;
  let packages: DpkgSummary[] = [...slice.summary].map(([name, s]) => ({
    name,
    filesBefore: s.filesBefore,
    filesAfter: s.filesAfter,
    bytesBefore: s.bytesBefore,
    bytesAfter: s.bytesAfter,
    kept: s.kept,
  }));
  if (dpkg) {
    const trimmed = trimDpkg(tree, slim, dpkg);
    slim = trimmed.tree;
    packages = [...packages, ...trimmed.summary];
  }

  // The result must pass the same probes before it is written.
  if (probes.length > 0) {
    try {
      await prober.trace(slim, probes, { env: env2, cwd, ...probeOptions });
    } catch (e) {
      if (!(e instanceof SliceError) || e.code !== 'SLICE_PROBE_FAILED') throw e;
      throw brokenError(e, tree, slim, slice, prober.touched, probes);
    }
  }

  const created = new Date((options.epoch ?? epochOf(config.created)) * 1000)
    .toISOString()
    .replace('.000Z', 'Z');
  const layer = layerFromTree(slim, {
    ...(options.epoch !== undefined ? { epoch: options.epoch } : {}),
    ...(options.tmpDir ? { spoolDir: options.tmpDir } : {}),
  });
  const probeText = probes.map((p) => p.map(quote).join(' '));
  const history: History[] = [
    {
      created,
      created_by: `pare slim${probeText.map((p) => ` --probe ${quote(p)}`).join('')} (from ${digest})`,
    },
  ];
  const platform = {
    architecture: config.architecture,
    os: config.os,
    ...(config.variant ? { variant: config.variant } : {}),
  };
  const image = buildImage({
    layers: [layer],
    platform,
    config: rc,
    created,
    ...(config.author ? { author: config.author } : {}),
    history,
    annotations: {
      'org.opencontainers.image.base.digest': digest,
      'org.opencontainers.image.created': created,
      [PROBES_ANNOTATION]: JSON.stringify(probes),
    },
  });
  return {
    image,
    source: {
      digest,
      compressed: manifest.layers.reduce((n, l) => n + l.size, 0),
      layers: manifest.layers.map((l) => l.size),
    },
    slice: { ...slice, tree: slim },
    packages: packages.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)),
    probes: probeText,
  };
}

function epochOf(created: string | undefined): number {
  const t = created ? Date.parse(created) : Number.NaN;
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
}

/**
 * The error for a slimmed tree that failed a probe: the paths the first run touched that exist in the source but not
 * in the result, each with the flag that brings it back (`--keep 'PATH'`, or the `--drop` glob that removed it).
 */
function brokenError(
  cause: SliceError,
  original: Tree,
  slim: Tree,
  slice: SliceResult,
  touched: readonly (readonly string[])[],
  probes: readonly (readonly string[])[],
): SliceError {
  const missing = new Set<string>();
  for (const list of touched)
    for (const p of list) {
      let c: string;
      try {
        c = canonicalName(original, p);
      } catch {
        continue;
      }
      // Python falls back to the source when a bytecode cache is gone: not what broke the probe.
      if (original.has(c) && !slim.has(c) && !c.includes('/__pycache__/')) missing.add(c);
    }
  const fixes = [...missing].sort().map((p) => {
    const d = slice.dropped.get(p);
    return d
      ? `  ${p}: removed by --drop ${quote(d.glob)}; narrow or remove that glob`
      : `  ${p}: add --keep ${quote(p)}`;
  });
  // The prober names the command as its words joined by spaces; say it as it can be typed again.
  let why = cause.message
    .replace(/^cannot run slice probe /, '')
    .replace(/ on the unsliced image; fix the probe command/, '');
  for (const p of probes) {
    const spaced = JSON.stringify(p.join(' '));
    if (why.startsWith(spaced)) why = `${p.map(quote).join(' ')}${why.slice(spaced.length)}`;
  }
  const list =
    fixes.length > 0
      ? `; the source run touched ${fixes.length} path(s) that are gone:\n${fixes.join('\n')}`
      : `; every path the source run touched is still there (the probe may behave differently from run to run: add --keep for what it reads, or --include-shell if it runs a shell)`;
  return new SliceError(
    'SLICE_SLIM_BROKEN',
    `cannot slim: the slimmed image fails probe ${why}${list}\nnothing was written`,
    { cause },
  );
}
