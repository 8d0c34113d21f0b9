import type { Command } from 'commander';
import { build } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
import { UsageError } from '../../errors.ts';
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
}

/** `pare build [DIR|pare.yaml]`: builds the image described by pare.yaml into an OCI layout (default ./out). */
export function register(program: Command): void {
  program
    .command('build')
    .description('build the image described by pare.yaml (default: ./pare.yaml) into an OCI layout')
    .argument('[project]', 'a pare.yaml or the directory holding one', '.')
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
    .option('-q, --quiet', 'print only the digest')
    .option('--json', 'print the result as JSON')
    .action(async (project: string, opts: BuildFlags) => {
      const cacheRef = cacheReference(opts.cache ?? (process.env.PARE_CACHE || undefined));
      const loaded = await loadConfig(project);
      // Progress on stderr only: stdout carries the digest (or the JSON) and nothing else.
      const progress = progressFor(progressMode(opts.quiet || opts.json));
      // A docker:// base is pulled with pare's defaults (PARE_INSECURE_REGISTRIES; loopback may be plain HTTP).
      const client = lazyClient({ quiet: opts.quiet || opts.json });
      const say = (s: string) => (opts.quiet || opts.json ? undefined : process.stderr.write(`${s}\n`));
      const cache = cacheRef
        ? new RegistryBlobCache(await client.get(), cacheRef, {
            onRefused: (digest, e) =>
              process.stderr.write(
                `warning: ${formatReference(cacheRef)}: not used for ${digest}: ${e.message}\n`,
              ),
          })
        : undefined;
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
      })
        .then(async (r) => {
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
          return r;
        })
        .finally(() => {
          progress.done();
          return client.close();
        });
      const m = r.artifact.kind === 'image' ? await r.artifact.image.manifest() : undefined;
      const size = m ? m.layers.reduce((n, l) => n + l.size, 0) : undefined;
      if (opts.json) {
        printJson({
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
            ? { path: r.debian.lockPath, state: r.debian.lockState, packages: r.debian.lock.packages.length }
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
        return;
      }
      process.stdout.write(`${r.digest}\n`);
      if (opts.quiet) return;
      const err = (s: string) => process.stderr.write(`${s}\n`);
      if (r.debian) err(`pare.lock: ${r.debian.lock.packages.length} packages (${r.debian.lockState})`);
      if (r.baseImage) err(`base: ${r.baseImage.name} pinned at ${r.baseImage.digest}`);
      for (const [platform, s] of r.slices) err(`sliced ${platform}:\n${formatSliceSummary(s)}`);
      const where = r.layoutDir ? `oci:${r.layoutDir}:${r.tag}` : '(dry run, nothing written)';
      err(`built ${where}${size !== undefined ? ` (${formatBytes(size)} compressed)` : ''}`);
      for (const v of r.variants)
        err(`built variant ${v.layoutDir ? `oci:${v.layoutDir}:${v.tag}` : v.tag} ${v.digest}`);
      if (r.tarFile) err(`wrote ${r.tarFile}`);
      if (r.records)
        err(`records (SBOM, provenance${r.slices.size ? ', slice report' : ''}): ${r.records.dir}`);
    });
}

/** The repository `--cache` / PARE_CACHE names (exit 2 for anything else: a tag or digest means nothing there). */
function cacheReference(value: string | undefined): ImageReference | undefined {
  if (value === undefined) return undefined;
  const t = parseTransportReference(value);
  if (t.transport !== 'docker' || t.ref.tag || t.ref.digest)
    throw new UsageError(
      'USAGE',
      `cannot use ${JSON.stringify(value)} as the build cache: name a registry repository (HOST/REPO, e.g. 127.0.0.1:5000/pare-cache), not a tag, digest or local path`,
    );
  return t.ref;
}
