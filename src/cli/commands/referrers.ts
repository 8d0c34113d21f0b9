import type { Command } from 'commander';
import { listReferrers, resolveDigest } from '../../registry/index.ts';
import { clientFromFlags, type RegistryFlags, registryArg, withRegistryFlags } from './copy.ts';

/**
 * `pare referrers HOST/REPO[:TAG|@DIGEST]`: lists the artifacts (signatures, SBOMs, attestations) that refer to the
 * image, through the OCI 1.1 referrers API or, where the registry lacks it, the `sha256-<hex>` tag index. One line per
 * referrer (`digest artifactType size`), or the OCI index with `--json`.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('referrers')
      .description('list the artifacts that refer to an image (OCI 1.1 referrers)')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// optional)')
      .option('--artifact-type <type>', 'only referrers of this artifact type')
      .option('--json', 'print the referrers as an OCI image index', false),
  ).action(async (reference: string, opts: RegistryFlags & { artifactType?: string; json: boolean }) => {
    const ref = registryArg(reference);
    const client = clientFromFlags({ ...opts, quiet: true });
    try {
      const subject = ref.digest ?? (await resolveDigest(client, ref));
      const r = await listReferrers(
        client,
        ref,
        subject,
        opts.artifactType ? { artifactType: opts.artifactType } : {},
      );
      if (opts.json) {
        const index = {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: r.manifests,
        };
        process.stdout.write(`${JSON.stringify(index, null, 2)}\n`);
      } else {
        for (const d of r.manifests)
          process.stdout.write(`${d.digest}\t${d.artifactType ?? '-'}\t${d.size}\n`);
      }
    } finally {
      await client.close();
    }
  });
}
