import type { Command } from 'commander';
import { openReference, platformFlag } from '../reference.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare digest REF`: prints the digest of the manifest the reference names, as `crane digest` does (an index's own
 * digest; `--platform` gives the digest of that platform's image instead). Any transport.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('digest')
      .description('print the manifest digest of an image reference')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE, or a path')
      .option('--platform <os/arch[/variant]>', "the digest of this platform's image in an index"),
  ).action(async (reference: string, opts: RegistryFlags & { platform?: string }) => {
    const platform = platformFlag(opts.platform);
    const client = lazyClient({ ...opts, quiet: true });
    try {
      const r = await openReference(reference, client);
      const d = platform ? await (await r.image(platform)).digest() : (await r.subject()).digest;
      process.stdout.write(`${d}\n`);
    } finally {
      await client.close();
    }
  });
}
