import type { Command } from 'commander';
import { build } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
import { formatBytes, printJson, progressBar } from '../format.ts';

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
    .option('--locked', 'fail if the packages would differ from pare.lock (for CI)')
    .option('--update', 'resolve packages afresh against the archive and rewrite pare.lock')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        project: string,
        opts: { output?: string; tag?: string; tar?: string; dryRun?: boolean; json?: boolean },
      ) => {
        const loaded = await loadConfig(project);
        const r = await build(loaded, {
          output: opts.output,
          tag: opts.tag,
          tar: opts.tar,
          dryRun: opts.dryRun,
        });
        const layers = r.artifact.kind === 'image' ? await r.artifact.image.manifest() : undefined;
        const size = layers ? layers.layers.reduce((n, l) => n + l.size, 0) : undefined;
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
          });
          return;
        }
        if (r.debian)
          process.stderr.write(
            `pare.lock: ${r.debian.lock.packages.length} packages (${r.debian.lockState})\n`,
          );
        const where = r.layoutDir ? `oci:${r.layoutDir}:${r.tag}` : '(dry run, nothing written)';
        process.stdout.write(`${r.digest}\n`);
        process.stderr.write(
          `built ${where}${size !== undefined ? ` (${formatBytes(size)} compressed)` : ''}${r.tarFile ? `\nwrote ${r.tarFile}` : ''}\n`,
        );
      },
    );
}
