import type { Command } from 'commander';
import { writeFileAtomic } from '../../attest/index.ts';
import { UsageError } from '../../errors.ts';
import { OciLayout } from '../../layout/index.ts';
import type { Image } from '../../oci/index.ts';
import { imageToTree, parsePlatform, selectImage } from '../../oci/index.ts';
import { pullImage } from '../../registry/index.ts';
import { cycloneDxJson, inventory, spdxJson } from '../../sbom/index.ts';
import { VERSION } from '../main.ts';
import { clientFromFlags, type RegistryFlags, registryArg, withRegistryFlags } from './copy.ts';
import { resolveLayoutImage } from './sign.ts';

/**
 * `pare sbom REF --format spdx|cyclonedx [-o FILE]`: the SBOM of an image in an OCI layout (`oci:DIR[:TAG]`) or a
 * registry: Debian packages (purl, version, source, DEP-5 licenses), the OS, every file with checksums and its owner,
 * app files and ELF package notes. Byte-identical for identical images: the timestamp is SOURCE_DATE_EPOCH, else the
 * image config's `created`, else the epoch.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('sbom')
      .description('write the SPDX 2.3 or CycloneDX 1.6 SBOM of an image')
      .argument('<reference>', 'oci:DIR[:TAG] or HOST[:PORT]/REPO[:TAG|@DIGEST]')
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
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      let image: Image;
      let name: string;
      let close = async () => {};
      if (reference.startsWith('oci:')) {
        const m = /^oci:(.*?)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?$/.exec(reference)!;
        const layout = await OciLayout.open(m[1]!);
        image = await selectImage(layout.artifact(await resolveLayoutImage(layout, m[2])), platform);
        name = m[2] ? `${m[1]}:${m[2]}` : m[1]!;
      } else {
        const ref = registryArg(reference);
        const client = clientFromFlags({ ...opts, quiet: true });
        close = () => client.close();
        image = await pullImage(client, ref, platform ? { platform } : {});
        name = `${ref.registry}/${ref.repository}`;
      }
      try {
        const config = await image.config();
        const sde = process.env.SOURCE_DATE_EPOCH;
        const created =
          sde !== undefined && /^\d+$/.test(sde)
            ? Number(sde)
            : config.created
              ? Math.floor(Date.parse(config.created) / 1000) || 0
              : 0;
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
        await close();
      }
    },
  );
}
