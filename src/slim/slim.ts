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
import { type ExecUser, resolveUser } from '../run/index.ts';
import {
  canonicalName,
  type Prober,
  type Reason,
  type SliceResult,
  sliceTree,
  straceProber,
} from '../slice/index.ts';
import { type DpkgSummary, dpkgOwners, readDpkgStatus, trimDpkg } from './dpkg.ts';
import { type HttpProbe, type HttpTraceOptions, resolveHttpPorts, traceHttp } from './http.ts';

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
  /** `--http-probe` requests to the image's own entrypoint (src/slim/http.ts). */
  readonly httpProbes?: readonly HttpProbe[];
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

/** One layer of the source: its compressed size, and the files it provides in the image before and after slimming. */
export interface LayerSummary {
  readonly digest: Digest;
  readonly compressed: number;
  /** Non-directory entries of the source image this layer wrote last (what it provides), and how many are left. */
  readonly filesBefore: number;
  readonly filesAfter: number;
  /** Bytes of those regular files, before and after (the dpkg database as trimmed). */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

export interface SlimResult {
  readonly image: Image;
  readonly source: {
    readonly digest: Digest;
    readonly compressed: number;
    readonly layers: readonly number[];
  };
  /** Per source layer, in manifest order: what it provided and what of that is left (all of it in the one layer). */
  readonly layers: readonly LayerSummary[];
  readonly slice: SliceResult;
  /** Per dpkg package (classic `status`) or status.d key, sorted. */
  readonly packages: readonly DpkgSummary[];
  readonly probes: readonly string[];
}

/** The annotation listing the probes (JSON array of argv lists). */
export const PROBES_ANNOTATION = 'dev.pare.slim.probes';
/** The annotation listing the HTTP probes (JSON array of `[PORT][/PATH]` as given), set when there are any. */
export const HTTP_PROBES_ANNOTATION = 'dev.pare.slim.http-probes';

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

/**
 * Who the probes run as and with what: the image's user (pare run's rule, through the image's own /etc/passwd and
 * /etc/group), its Env plus HOME from passwd when Env has none, its WorkingDir.
 */
export async function probeContext(
  tree: Tree,
  rc: RunConfig,
): Promise<{ user: ExecUser; env: string[]; cwd: string }> {
  const dec = new TextDecoder();
  const text = async (p: string) => (tree.file(p) ? dec.decode(await tree.readFile(p)) : undefined);
  const user = resolveUser(
    rc.User,
    { passwd: await text('/etc/passwd'), group: await text('/etc/group') },
    'image',
  );
  const env = rc.Env ?? [];
  return {
    user,
    env: env.some((e) => e.startsWith('HOME=')) ? [...env] : [...env, `HOME=${user.home}`],
    cwd: rc.WorkingDir || '/',
  };
}

/**
 * The slicer's probe commands and prober for `probes` plus `http`: the HTTP probes are one more "command" (its
 * why-kept detail: `--http-probe 8000/ …`), traced by starting the entrypoint (traceHttp); `statuses()` are what the
 * source answered, which a re-probe must answer. `pare why-kept` uses it to re-slice a slim result.
 */
export function withHttpProbes(
  inner: Prober,
  probes: readonly (readonly string[])[],
  http: readonly Required<HttpProbe>[],
  httpOptions: Omit<HttpTraceOptions, 'expect' | 'where'>,
): { commands: string[][]; prober: Prober; statuses(): number[] } {
  let statuses: number[] = [];
  const prober: Prober = {
    async trace(t, commands, ctx) {
      const out = probes.length > 0 ? await inner.trace(t, commands.slice(0, probes.length), ctx) : [];
      if (http.length > 0) {
        const r = await traceHttp(t, http, {
          ...httpOptions,
          where: 'on the unsliced image; fix the probe command',
        });
        statuses = r.statuses;
        out.push(r.touched);
      }
      return out;
    },
  };
  const commands = probes.map((p) => [...p]);
  if (http.length > 0) commands.push(http.flatMap((p) => ['--http-probe', p.spec]));
  return { commands, prober, statuses: () => statuses };
}

/** Returns the slimmed image of `source` (nothing is written; `result.image` is lazy until its digest is asked). */
export async function slimImage(source: Image, options: SlimOptions = {}): Promise<SlimResult> {
  const [config, manifest, digest] = await Promise.all([source.config(), source.manifest(), source.digest()]);
  const rc: RunConfig = config.config ?? {};
  const origins = new Map<string, string>();
  const tree = await imageToTree(source, {
    origins,
    ...(options.tmpDir ? { spoolDir: options.tmpDir } : {}),
  });
  const { user, env: env2, cwd } = await probeContext(tree, rc);
  const probes = (options.probes ?? []).map((p) => [...p]);
  const probeOptions = {
    uid: user.uid,
    gid: user.gid,
    ...(options.probeTimeoutMs !== undefined ? { timeoutMs: options.probeTimeoutMs } : {}),
    ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
  };
  const http = resolveHttpPorts(options.httpProbes ?? [], rc);
  const httpOptions = {
    config: rc,
    user,
    timeoutMs: options.probeTimeoutMs ?? 120_000,
    ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
  };
  const inner = options.prober ?? straceProber(probeOptions);
  const combined = withHttpProbes(inner, probes, http, httpOptions);
  const prober = recording(combined.prober);
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
    probe: combined.commands,
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

  // What the slicer did not keep itself but the result holds: the dpkg database as trimmed.
  const kept = new Map<string, Reason>();
  for (const p of slim.paths())
    if (p !== '/')
      kept.set(
        p,
        slice.kept.get(p) ?? { why: 'dpkg-metadata', detail: 'the dpkg database trimmed to what is left' },
      );

  // The result must pass the same probes before it is written.
  if (probes.length > 0 || http.length > 0) {
    try {
      if (probes.length > 0) await inner.trace(slim, probes, { env: env2, cwd, ...probeOptions });
      if (http.length > 0) await traceHttp(slim, http, { ...httpOptions, expect: combined.statuses() });
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
      created_by: `pare slim${probeText.map((p) => ` --probe ${quote(p)}`).join('')}${http.map((p) => ` --http-probe ${quote(p.spec)}`).join('')} (from ${digest})`,
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
      ...(http.length > 0 ? { [HTTP_PROBES_ANNOTATION]: JSON.stringify(http.map((p) => p.spec)) } : {}),
    },
  });
  const perLayer = new Map(
    manifest.layers.map((l) => [l.digest, { filesBefore: 0, filesAfter: 0, bytesBefore: 0, bytesAfter: 0 }]),
  );
  const count = (t: Tree, which: 'Before' | 'After') => {
    for (const [p, e] of t.entries()) {
      if (e.kind === 'dir') continue;
      const l = perLayer.get((origins.get(p) ?? '') as Digest);
      if (!l) continue;
      l[`files${which}`]++;
      if (e.kind === 'file') l[`bytes${which}`] += e.content.size;
    }
  };
  count(tree, 'Before');
  count(slim, 'After');
  const after = { files: 0, bytes: 0 };
  for (const [, e] of slim.entries()) {
    if (e.kind === 'dir') continue;
    after.files++;
    if (e.kind === 'file') after.bytes += e.content.size;
  }
  return {
    image,
    layers: manifest.layers.map((l) => ({
      digest: l.digest,
      compressed: l.size,
      ...perLayer.get(l.digest)!,
    })),
    source: {
      digest,
      compressed: manifest.layers.reduce((n, l) => n + l.size, 0),
      layers: manifest.layers.map((l) => l.size),
    },
    // The totals after are the result's (the slicer's own count is from before the dpkg database was trimmed).
    slice: { ...slice, tree: slim, kept, after: { files: after.files, bytes: after.bytes } },
    packages: packages.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)),
    probes: [...probeText, ...http.map((p) => `--http-probe ${p.spec}`)],
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
