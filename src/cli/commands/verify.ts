import type { Command } from 'commander';
import { verifyImageSignatures } from '../../attest/index.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';
import { openTarget, verifierFromFile } from '../signing.ts';

/**
 * `pare verify REF --key cosign.pub`: checks the signatures cosign v3 (bundle referrers) or v2 (`.sig`) — or pare — attached to an image in a
 * registry or an OCI layout. Prints each verified payload as one JSON line on stdout (as cosign does); exits non-zero
 * with one reason per rejected candidate when nothing verifies.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('verify')
      .description('verify image signatures (cosign v3 bundles and v2 .sig tags) against a public key')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or a layout directory')
      .requiredOption('--key <file>', 'PEM public key (cosign.pub)'),
  ).action(async (reference: string, opts: RegistryFlags & { key: string }) => {
    const verifier = await verifierFromFile(opts.key);
    const client = lazyClient({ ...opts, quiet: true });
    try {
      const t = await openTarget(reference, client, 'verify');
      const got = await verifyImageSignatures(t.store, t.subject.digest, verifier);
      process.stderr.write(`verified ${got.length} signature(s) on ${t.store.name}@${t.subject.digest}\n`);
      for (const v of got) process.stdout.write(`${new TextDecoder().decode(v.payload)}\n`);
    } finally {
      await client.close();
    }
  });
}
