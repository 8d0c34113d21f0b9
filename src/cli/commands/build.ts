import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { build, outputTarget } from '../../build/index.ts';
import { type LoadedConfig, loadConfig } from '../../config/index.ts';
import { UsageError } from '../../errors.ts';
import { exists } from '../../layout/index.ts';
import {
  formatReference,
  type ImageReference,
  parseTransportReference,
  RegistryBlobCache,
} from '../../registry/index.ts';
import { formatSliceSummary } from '../../slice/index.ts';
import { formatBytes, printJson } from '../format.ts';
import { progress as progressFor, progressMode } from '../progress.ts';
import { lazyClient } from '../registry-flags.ts';

interface BuildFlags {
  output?: string;
  tag?: string;
  tar?: string;
  dryRun?: boolean;
  json?: boolean;
  locked?: boolean;
  update?: boolean;
  quiet?: boolean;
  allowOutsideContext?: boolean;
  cache?: string;
  matrix?: boolean;
}

/**
 * `pare build [PROJECT…]`: builds the image each pare.yaml describes into an OCI layout (default ./out). Several
 * projects (or a directory of project directories) are built one after the other in one process, sharing the
 * download cache, the registry client and `--cache`; `--matrix` prints them as a GitHub Actions matrix instead, so
 * CI runners fan out one image each.
 */
export function register(program: Command): void {
  program
    .command('build')
    .description('build the image described by pare.yaml (default: ./pare.yaml) into an OCI layout')
    .argument(
      '[projects...]',
      'pare.yaml files or directories holding one, or a directory of such directories (default: .)',
    )
    .option('-o, --output <dir>', 'OCI layout directory to write (default: output.layout, else ./out)')
    .option('-t, --tag <tag>', 'tag to write in the layout (default: output.tag, else latest)')
    .option('--tar <file>', 'also write a single-file archive (OCI layout + docker-archive)')
    .option('--dry-run', 'compute the image and its digest, write nothing (not even pare.lock)')
    .option('--locked', 'fail if the packages or the base: image would differ from pare.lock (for CI)')
    .option('--update', 'resolve packages (and a base: image tag) afresh and rewrite pare.lock')
    .option(
      '--allow-outside-context',
      'let files: sources and output.layout/tar leave the directory of pare.yaml (refused by default, symlinks resolved)',
    )
    .option(
      '--cache <repository>',
      'share verified .debs through a registry repository (e.g. registry.example:5000/pare-cache; default $PARE_CACHE): asked before the mirror, filled after the build',
    )
    .option('--matrix', 'print the projects as a GitHub Actions matrix (JSON) and build nothing')
    .option('-q, --quiet', 'print only the digest')
    .option('--json', 'print the result as JSON')
    .action(async (args: string[], opts: BuildFlags) => {
      const given = opts.cache ?? (process.env.PARE_CACHE || undefined);
      const givenRef =
        given === undefined ? undefined : cacheReference(given, opts.cache ? '--cache' : 'PARE_CACHE');
      const projects = await expandProjects(args.length ? args : ['.']);
      const configs: LoadedConfig[] = [];
      for (const p of projects) configs.push(await loadConfig(p));
      // --cache, else PARE_CACHE, else each pare.yaml's cache:
      const cacheRefs = configs.map(
        (c) => givenRef ?? (c.config.cache ? cacheReference(c.config.cache, c.locate(['cache'])) : undefined),
      );
      if (opts.matrix) {
        printJson({
          include: configs.map((c, n) => ({ project: projects[n], name: c.config.name ?? basename(c.dir) })),
        });
        return;
      }
      if (configs.length > 1) await checkSeveral(configs, projects, opts);
      // Progress on stderr only: stdout carries the digest (or the JSON) and nothing else.
      const progress = progressFor(progressMode(opts.quiet || opts.json));
      // A docker:// base is pulled with pare's defaults (PARE_INSECURE_REGISTRIES; loopback may be plain HTTP).
      const client = lazyClient({ quiet: opts.quiet || opts.json });
      const say = (s: string) => (opts.quiet || opts.json ? undefined : process.stderr.write(`${s}\n`));
      try {
        const caches = new Map<string, RegistryBlobCache>();
        const cacheFor = async (ref: ImageReference | undefined) => {
          if (!ref) return undefined;
          const key = formatReference(ref);
          let c = caches.get(key);
          if (!c) {
            c = new RegistryBlobCache(await client.get(), ref, {
              onRefused: (digest, e) =>
                process.stderr.write(`warning: ${key}: not used for ${digest}: ${e.message}\n`),
            });
            caches.set(key, c);
          }
          return c;
        };
        const results: Record<string, unknown>[] = [];
        for (const [n, loaded] of configs.entries()) {
          const cache = await cacheFor(cacheRefs[n]);
          const r = await build(loaded, {
            output: opts.output,
            tag: opts.tag,
            tar: opts.tar,
            dryRun: opts.dryRun,
            allowOutsideContext: opts.allowOutsideContext,
            debian: {
              locked: opts.locked,
              update: opts.update,
              onProgress: progress.download,
              ...(cache ? { archive: { remote: cache } } : {}),
            },
            registry: client.get,
            onStep: progress.step,
          });
          // As BuildKit's --cache-to: a cache that could not be filled fails the command (the image is written).
          if (cache && r.debian && r.layoutDir) {
            const debs = [...r.debian.debs.values()].flat().map((d) => ({
              digest: d.record.sha256,
              size: d.record.size,
              path: d.path,
              title: d.record.filename.slice(d.record.filename.lastIndexOf('/') + 1),
            }));
            const shared = await cache.publish(debs);
            say(
              `cache: ${shared.uploaded} of ${debs.length} .debs uploaded to ${cache.name} (${shared.tag})`,
            );
          }
          const m = r.artifact.kind === 'image' ? await r.artifact.image.manifest() : undefined;
          const size = m ? m.layers.reduce((t, l) => t + l.size, 0) : undefined;
          if (opts.json) {
            results.push({
              ...(configs.length > 1 ? { project: projects[n] } : {}),
              digest: r.digest,
              mediaType: r.descriptor.mediaType,
              platforms: r.platforms.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/')),
              layout: r.layoutDir,
              tag: r.tag,
              tar: r.tarFile,
              compressedSize: size,
              epoch: r.epoch,
              base: r.baseImage ? { name: r.baseImage.name, digest: r.baseImage.digest } : undefined,
              lock: r.debian
                ? {
                    path: r.debian.lockPath,
                    state: r.debian.lockState,
                    packages: r.debian.lock.packages.length,
                  }
                : undefined,
              slices: Object.fromEntries(
                [...r.slices].map(([k, s]) => [k, { before: s.before, after: s.after }]),
              ),
              records: r.records?.files,
              variants: r.variants.map((v) => ({
                tag: v.tag,
                digest: v.digest,
                mediaType: v.descriptor.mediaType,
                records: v.records?.files,
              })),
            });
            continue;
          }
          // One project: the digest alone (scripts read it); several: `DIGEST  PROJECT` lines, as sha256sum prints.
          process.stdout.write(configs.length > 1 ? `${r.digest}  ${projects[n]}\n` : `${r.digest}\n`);
          if (opts.quiet) continue;
          if (r.debian) say(`pare.lock: ${r.debian.lock.packages.length} packages (${r.debian.lockState})`);
          if (r.baseImage) say(`base: ${r.baseImage.name} pinned at ${r.baseImage.digest}`);
          for (const [platform, s] of r.slices) say(`sliced ${platform}:\n${formatSliceSummary(s)}`);
          const where = r.layoutDir ? `oci:${r.layoutDir}:${r.tag}` : '(dry run, nothing written)';
          say(`built ${where}${size !== undefined ? ` (${formatBytes(size)} compressed)` : ''}`);
          for (const v of r.variants)
            say(`built variant ${v.layoutDir ? `oci:${v.layoutDir}:${v.tag}` : v.tag} ${v.digest}`);
          if (r.tarFile) say(`wrote ${r.tarFile}`);
          if (r.records)
            say(`records (SBOM, provenance${r.slices.size ? ', slice report' : ''}): ${r.records.dir}`);
        }
        if (opts.json) printJson(configs.length > 1 ? results : results[0]);
      } finally {
        progress.done();
        await client.close();
      }
    });
}

/**
 * The projects the arguments name, in order: a pare.yaml, a directory holding one, or a directory whose
 * subdirectories hold one (those, sorted). Exit 2 for a directory with neither, or a project named twice.
 */
async function expandProjects(args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of args) {
    const st = await stat(a).catch(() => undefined);
    if (st?.isDirectory() && !(await exists(join(a, 'pare.yaml')))) {
      const subs = (await readdir(a, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => join(a, d.name))
        .sort();
      const found: string[] = [];
      for (const d of subs) if (await exists(join(d, 'pare.yaml'))) found.push(d);
      if (found.length === 0)
        throw new UsageError(
          'CONFIG_NOT_FOUND',
          `cannot build ${JSON.stringify(a)}: no pare.yaml in it or in its subdirectories`,
          { file: a },
        );
      out.push(...found);
    } else out.push(a);
  }
  const seen = new Map<string, string>();
  for (const p of out) {
    const key = resolve(p.endsWith('.yaml') || p.endsWith('.yml') ? dirname(p) : p);
    const first = seen.get(key);
    if (first !== undefined)
      throw new UsageError(
        'USAGE',
        `cannot build ${JSON.stringify(p)}: it is the project ${JSON.stringify(first)} again`,
      );
    seen.set(key, p);
  }
  return out;
}

/**
 * Several projects write to their own output: (layout, tag) pairs, which must all differ: -t and --tar would give
 * every image the same name, and two projects on the default ./out:latest would overwrite each other (exit 2).
 */
async function checkSeveral(
  configs: readonly LoadedConfig[],
  projects: readonly string[],
  opts: BuildFlags,
): Promise<void> {
  if (opts.tag !== undefined || opts.tar !== undefined)
    throw new UsageError(
      'USAGE',
      `cannot use ${opts.tag !== undefined ? '-t/--tag' : '--tar'} with several projects: each would write the same name; set output.tag (and output.tar) in each pare.yaml`,
    );
  const taken = new Map<string, string>();
  for (const [n, c] of configs.entries()) {
    const { layoutDir, tag } = await outputTarget(c, {
      output: opts.output,
      allowOutsideContext: opts.allowOutsideContext,
    });
    // the main image's tag and each variant's TAG-NAME
    const tags = [tag, ...Object.keys(c.config.variants ?? {}).map((v) => `${tag}-${v}`)];
    for (const t of tags) {
      const at = `oci:${layoutDir}:${t}`;
      const other = taken.get(at);
      if (other !== undefined)
        throw new UsageError(
          'USAGE',
          `cannot build ${JSON.stringify(projects[n])} and ${JSON.stringify(other)} together: both would write ${at}; give each pare.yaml its own output.tag or output.layout`,
        );
      taken.set(at, projects[n]!);
    }
  }
}

/**
 * The repository `--cache`, PARE_CACHE or pare.yaml's cache: (`where`) names (exit 2 for anything else: a tag or
 * digest means nothing there).
 */
function cacheReference(value: string, where: string): ImageReference {
  let t: ReturnType<typeof parseTransportReference>;
  try {
    t = parseTransportReference(value);
  } catch (e) {
    throw new UsageError(
      'USAGE',
      `${where}: cannot use ${JSON.stringify(value)} as the build cache: ${(e as Error).message}`,
    );
  }
  if (t.transport !== 'docker' || t.ref.tag || t.ref.digest)
    throw new UsageError(
      'USAGE',
      `${where}: cannot use ${JSON.stringify(value)} as the build cache: name a registry repository (HOST/REPO, e.g. 127.0.0.1:5000/pare-cache), not a tag, digest or local path`,
    );
  return t.ref;
}
