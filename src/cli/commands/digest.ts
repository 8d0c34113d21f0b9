import type { Command } from 'commander';
import { selectImage } from '../../oci/index.ts';
import { pull, resolveDigest } from '../../registry/index.ts';
import { clientFromFlags, platformFlag, type RegistryFlags, registryArg, withRegistryFlags } from './copy.ts';

/**
 * `pare digest HOST/REPO[:TAG]`: prints the digest of the manifest the reference names, as `crane digest` does (an
 * index's own digest; `--platform` gives the digest of that platform's image instead).
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('digest')
      .description('print the manifest digest of an image reference')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// optional)')
      .option('--platform <os/arch[/variant]>', "the digest of this platform's image in an index"),
  ).action(async (reference: string, opts: RegistryFlags & { platform?: string }) => {
    const ref = registryArg(reference);
    const platform = platformFlag(opts.platform);
    const client = clientFromFlags({ ...opts, quiet: true });
    try {
      const d = platform
        ? await (await selectImage(await pull(client, ref), platform)).digest()
        : await resolveDigest(client, ref);
      process.stdout.write(`${d}\n`);
    } finally {
      await client.close();
    }
  });
}
