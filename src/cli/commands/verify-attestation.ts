import type { Command } from 'commander';
import { predicateTypeFor, verifyImageAttestations } from '../../attest/index.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';
import { openTarget, verifierFromFile } from '../signing.ts';

/**
 * `pare verify-attestation REF --key cosign.pub [--type slsaprovenance1|spdxjson|cyclonedx|openvex|URI]`: checks the
 * in-toto attestations cosign v3 (bundle referrers), cosign v2 (`.att`) or pare attached to an image in a registry or
 * an OCI layout. Prints each verified statement as one JSON line on stdout; exits non-zero with one reason per
 * rejected candidate when nothing verifies.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('verify-attestation')
      .description('verify in-toto attestations on an image against a public key')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or a layout directory')
      .requiredOption('--key <file>', 'PEM public key (cosign.pub)')
      .option(
        '--type <type>',
        'only this predicate type (slsaprovenance1, spdxjson, cyclonedx, openvex, or a URI)',
      ),
  ).action(async (reference: string, opts: RegistryFlags & { key: string; type?: string }) => {
    const verifier = await verifierFromFile(opts.key);
    const client = lazyClient({ ...opts, quiet: true });
    try {
      const t = await openTarget(reference, client, 'verify attestations of');
      const got = await verifyImageAttestations(
        t.store,
        t.subject.digest,
        verifier,
        opts.type ? { predicateType: predicateTypeFor(opts.type) } : {},
      );
      process.stderr.write(`verified ${got.length} attestation(s) on ${t.store.name}@${t.subject.digest}\n`);
      for (const v of got) process.stdout.write(`${new TextDecoder().decode(v.payload)}\n`);
    } finally {
      await client.close();
    }
  });
}
