import type { Command } from 'commander';
import { build } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
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
      'let files: sources leave the directory of pare.yaml (refused by default, symlinks resolved)',
    )
    .option('-q, --quiet', 'print only the digest')
    .option('--json', 'print the result as JSON')
    .action(async (project: string, opts: BuildFlags) => {
      const loaded = await loadConfig(project);
      // Progress on stderr only: stdout carries the digest (or the JSON) and nothing else.
      const progress = progressFor(progressMode(opts.quiet || opts.json));
      // A docker:// base is pulled with pare's defaults (PARE_INSECURE_REGISTRIES; loopback may be plain HTTP).
      const client = lazyClient({ quiet: opts.quiet || opts.json });
      const r = await build(loaded, {
        output: opts.output,
        tag: opts.tag,
        tar: opts.tar,
        dryRun: opts.dryRun,
        allowOutsideContext: opts.allowOutsideContext,
        debian: { locked: opts.locked, update: opts.update, onProgress: progress.download },
        registry: client.get,
        onStep: progress.step,
      }).finally(() => {
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
      if (r.tarFile) err(`wrote ${r.tarFile}`);
      if (r.records)
        err(`records (SBOM, provenance${r.slices.size ? ', slice report' : ''}): ${r.records.dir}`);
    });
}
