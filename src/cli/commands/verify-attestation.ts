import type { Command } from 'commander';
import { predicateTypeFor, verifyImageAttestations } from '../../attest/index.ts';
import { type RegistryFlags, withRegistryFlags } from './copy.ts';
import { openTarget, verifierFromFile } from './sign.ts';

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
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]')
      .requiredOption('--key <file>', 'PEM public key (cosign.pub)')
      .option(
        '--type <type>',
        'only this predicate type (slsaprovenance1, spdxjson, cyclonedx, openvex, or a URI)',
      ),
  ).action(async (reference: string, opts: RegistryFlags & { key: string; type?: string }) => {
    const verifier = await verifierFromFile(opts.key);
    const t = await openTarget(reference, opts);
    try {
      const got = await verifyImageAttestations(
        t.store,
        t.subject.digest,
        verifier,
        opts.type ? { predicateType: predicateTypeFor(opts.type) } : {},
      );
      process.stderr.write(`verified ${got.length} attestation(s) on ${t.store.name}@${t.subject.digest}\n`);
      for (const v of got) process.stdout.write(`${new TextDecoder().decode(v.payload)}\n`);
    } finally {
      await t.close();
    }
  });
}
