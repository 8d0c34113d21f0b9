import type { Command } from 'commander';
import { openReference } from '../reference.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare referrers REF`: lists the artifacts (signatures, SBOMs, attestations) that refer to an image in a registry
 * (the OCI 1.1 referrers API or, where the registry lacks it, the `sha256-<hex>` tag index) or an OCI layout (the
 * tag index). One line per referrer (`digest artifactType size`), or the OCI index with `--json`.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('referrers')
      .description('list the artifacts that refer to an image (OCI 1.1 referrers)')
      .argument(
        '<reference>',
        'HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// optional), oci:DIR[:TAG] or a layout directory',
      )
      .option('--artifact-type <type>', 'only referrers of this artifact type')
      .option('--json', 'print the referrers as an OCI image index', false),
  ).action(async (reference: string, opts: RegistryFlags & { artifactType?: string; json: boolean }) => {
    const client = lazyClient({ ...opts, quiet: true });
    try {
      const opened = await openReference(reference, client);
      const store = await opened.store('list referrers of');
      const all = await store.listReferrers((await opened.subject()).digest);
      const r = { manifests: all.filter((d) => !opts.artifactType || d.artifactType === opts.artifactType) };
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
