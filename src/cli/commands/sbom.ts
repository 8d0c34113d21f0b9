import type { Command } from 'commander';
import { sourceDateEpoch, VERSION } from '../../defaults.ts';
import { UsageError } from '../../errors.ts';
import { writeFileAtomic } from '../../layout/index.ts';
import { imageToTree } from '../../oci/index.ts';
import type { TransportReference } from '../../registry/index.ts';
import { cycloneDxJson, inventory, spdxJson } from '../../sbom/index.ts';
import { openReference, platformFlag } from '../reference.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare sbom REF --format spdx|cyclonedx [-o FILE]`: the SBOM of an image in any transport (an OCI layout, an
 * archive or a registry): Debian packages (purl, version, source, DEP-5 licenses), the OS, every file with checksums
 * and its owner, app files and ELF package notes. Byte-identical for identical images: the timestamp is SOURCE_DATE_EPOCH, else the
 * image config's `created`, else the epoch.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('sbom')
      .description('write the SPDX 2.3 or CycloneDX 1.6 SBOM of an image')
      .argument(
        '<reference>',
        'oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, a path, or HOST[:PORT]/REPO[:TAG|@DIGEST]',
      )
      .option('--format <format>', 'spdx or cyclonedx', 'spdx')
      .option('-o, --output <file>', 'write here (atomically) instead of stdout')
      .option('--platform <os/arch>', 'image of an index to describe (default: the host platform)')
      .option('--no-files', 'list packages only, not every file'),
  ).action(
    async (
      reference: string,
      opts: RegistryFlags & { format: string; output?: string; platform?: string; files: boolean },
    ) => {
      if (opts.format !== 'spdx' && opts.format !== 'cyclonedx')
        throw new UsageError(
          'USAGE',
          `cannot write SBOM format ${JSON.stringify(opts.format)}: want spdx or cyclonedx`,
        );
      const platform = platformFlag(opts.platform);
      const epoch = sourceDateEpoch();
      const client = lazyClient({ ...opts, quiet: true });
      try {
        const opened = await openReference(reference, client);
        const image = await opened.image(platform);
        const name = sbomName(opened.reference);
        const config = await image.config();
        const created = epoch ?? (config.created ? Math.floor(Date.parse(config.created) / 1000) || 0 : 0);
        const inv = await inventory(await imageToTree(image), {
          name,
          digest: await image.digest(),
          files: opts.files,
        });
        const text =
          opts.format === 'spdx'
            ? spdxJson(inv, { created, toolVersion: VERSION })
            : cycloneDxJson(inv, { created, toolVersion: VERSION });
        if (opts.output) await writeFileAtomic(opts.output, text);
        else process.stdout.write(text);
      } finally {
        await client.close();
      }
    },
  );
}

/** The SBOM's document name: the registry repository, or the local path and tag (as before: no transport prefix). */
function sbomName(t: TransportReference): string {
  if (t.transport === 'docker') return `${t.ref.registry}/${t.ref.repository}`;
  return t.tag ? `${t.path}:${t.tag}` : t.path;
}
