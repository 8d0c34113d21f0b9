import type { Command } from 'commander';
import { formatPlatform, type Image, verifyArtifact } from '../../oci/index.ts';
import { formatBytes, printJson, table } from '../format.ts';
import { openReference, platformFlag } from '../reference.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/** `pare inspect REF`: what an image is and how it runs; an index lists its images unless --platform picks one. */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('inspect')
      .description(
        'show an image: digest, platforms, run config, labels, layers (any transport: oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, a path, or [docker://]HOST/REPO[:TAG])',
      )
      .argument('<image>', 'image reference')
      .option('--platform <os/arch[/variant]>', 'show this image of an index instead of the index')
      .option('--json', 'print manifest and config as JSON')
      .option('--raw', 'print the raw manifest bytes'),
  ).action(
    async (ref: string, opts: RegistryFlags & { json?: boolean; raw?: boolean; platform?: string }) => {
      const platform = platformFlag(opts.platform);
      const client = lazyClient({ ...opts, quiet: true });
      try {
        const opened = await openReference(ref, client);
        const a = await opened.artifact();
        // A local image is read and checked whole (digests, sizes, diff_ids, limits) before anything is shown.
        if (opened.reference.transport !== 'docker') await verifyArtifact(a);
        if (a.kind === 'index' && !platform) {
          if (opts.raw) {
            process.stdout.write(new TextDecoder().decode(await a.index.rawManifest()));
            return;
          }
          const m = await a.index.manifest();
          if (opts.json) {
            printJson({ digest: await a.index.digest(), mediaType: await a.index.mediaType(), index: m });
            return;
          }
          process.stdout.write(
            `Digest:     ${await a.index.digest()}\nMediaType:  ${await a.index.mediaType()}\nManifests:\n`,
          );
          process.stdout.write(
            `${table(m.manifests.map((d) => ['  ', d.platform ? formatPlatform(d.platform) : '(no platform)', d.digest, formatBytes(d.size)]))}\n`,
          );
          return;
        }
        await printImage(await opened.image(platform), opts);
      } finally {
        await client.close();
      }
    },
  );
}

async function printImage(img: Image, opts: { json?: boolean; raw?: boolean }): Promise<void> {
  if (opts.raw) {
    process.stdout.write(new TextDecoder().decode(await img.rawManifest()));
    return;
  }
  const [m, c] = [await img.manifest(), await img.config()];
  if (opts.json) {
    printJson({ digest: await img.digest(), mediaType: await img.mediaType(), manifest: m, config: c });
    return;
  }
  const rc = c.config ?? {};
  const rows: string[][] = [
    ['Digest:', await img.digest()],
    ['MediaType:', await img.mediaType()],
    ['Platform:', formatPlatform(c)],
    ['Created:', c.created ?? ''],
    ['User:', rc.User ?? '(root)'],
    ['Entrypoint:', JSON.stringify(rc.Entrypoint ?? [])],
    ['Cmd:', JSON.stringify(rc.Cmd ?? [])],
    ['WorkingDir:', rc.WorkingDir ?? ''],
    ['Env:', (rc.Env ?? []).join(' ')],
    ['Ports:', Object.keys(rc.ExposedPorts ?? {}).join(' ')],
    ['StopSignal:', rc.StopSignal ?? ''],
    ['Size:', formatBytes(m.layers.reduce((n, l) => n + l.size, 0))],
  ];
  process.stdout.write(`${table(rows)}\n`);
  const labels = Object.entries(rc.Labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (labels.length) process.stdout.write(`Labels:\n${table(labels.map(([k, v]) => ['  ', k, v]))}\n`);
  process.stdout.write('Layers:\n');
  process.stdout.write(
    `${table(m.layers.map((l, i) => ['  ', l.digest, formatBytes(l.size), c.history?.filter((h) => !h.empty_layer)[i]?.created_by ?? '']))}\n`,
  );
  const ann = Object.entries(m.annotations ?? {});
  if (ann.length) process.stdout.write(`Annotations:\n${table(ann.map(([k, v]) => ['  ', k, v]))}\n`);
}
