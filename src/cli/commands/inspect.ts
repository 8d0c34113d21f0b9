import type { Command } from 'commander';
import { parseLocalRef, readLocal } from '../../layout/index.ts';
import { type Artifact, formatPlatform } from '../../oci/index.ts';
import { formatBytes, printJson, table } from '../format.ts';

/** Returns the artifact a CLI image argument names (local transports; `docker://` once the registry client is wired). */
export async function openArtifact(ref: string): Promise<Artifact> {
  return readLocal(await parseLocalRef(ref));
}

/** `pare inspect REF`: what an image is and how it runs. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description(
      'show an image: digest, platforms, run config, layers (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, or a path)',
    )
    .argument('<image>', 'image reference')
    .option('--json', 'print manifest and config as JSON')
    .option('--raw', 'print the raw manifest bytes')
    .action(async (ref: string, opts: { json?: boolean; raw?: boolean }) => {
      const a = await openArtifact(ref);
      const top = a.kind === 'image' ? a.image : a.index;
      if (opts.raw) {
        process.stdout.write(new TextDecoder().decode(await top.rawManifest()));
        return;
      }
      if (a.kind === 'index') {
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
      const img = a.image;
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
        ['Size:', formatBytes(m.layers.reduce((n, l) => n + l.size, 0))],
      ];
      process.stdout.write(`${table(rows)}\nLayers:\n`);
      process.stdout.write(
        `${table(m.layers.map((l, i) => ['  ', l.digest, formatBytes(l.size), c.history?.filter((h) => !h.empty_layer)[i]?.created_by ?? '']))}\n`,
      );
      const ann = Object.entries(m.annotations ?? {});
      if (ann.length) process.stdout.write(`Annotations:\n${table(ann.map(([k, v]) => ['  ', k, v]))}\n`);
    });
}
