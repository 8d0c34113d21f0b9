import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { attestImage, predicateTypeFor } from '../../attest/index.ts';
import { UsageError } from '../../errors.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';
import { createdTime, openTarget, signerFromFile } from '../signing.ts';

/**
 * `pare attest REF --key cosign.key --type slsaprovenance1|spdxjson|cyclonedx|openvex|URI --predicate FILE [--legacy]`:
 * wraps the predicate JSON in an in-toto Statement v1 about the image, signs it (DSSE) and attaches it as cosign v3
 * does (bundle referrer) or, with `--legacy`, as cosign v2 does (`sha256-<hex>.att`).
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('attest')
      .description('attach a signed in-toto attestation to an image')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or a layout directory')
      .requiredOption('--key <file>', 'private key (cosign encrypted format or PKCS#8 PEM)')
      .requiredOption(
        '--type <type>',
        'slsaprovenance1, spdxjson, cyclonedx, openvex, … or a predicate type URI',
      )
      .requiredOption('--predicate <file>', 'the predicate JSON (e.g. an SBOM or SLSA provenance predicate)')
      .option('--legacy', 'write the cosign v2 sha256-<hex>.att tag instead of a bundle referrer', false),
  ).action(
    async (
      reference: string,
      opts: RegistryFlags & { key: string; type: string; predicate: string; legacy: boolean },
    ) => {
      const created = createdTime();
      const predicateType = predicateTypeFor(opts.type);
      let predicate: unknown;
      try {
        predicate = JSON.parse(await readFile(opts.predicate, 'utf8'));
      } catch (cause) {
        throw new UsageError(
          'INPUT_INVALID',
          `cannot read predicate ${JSON.stringify(opts.predicate)}: ${(cause as Error).message}`,
          { cause, file: opts.predicate },
        );
      }
      // A whole statement given as predicate (pare provenance output) is unwrapped, as cosign users expect.
      const p = predicate as { _type?: string; predicate?: unknown };
      if (typeof p?._type === 'string' && p._type.startsWith('https://in-toto.io/Statement/'))
        predicate = p.predicate;
      const signer = await signerFromFile(opts.key);
      const client = lazyClient({ ...opts, quiet: true });
      try {
        const t = await openTarget(reference, client, 'attest');
        const r = await attestImage(t.store, t.subject, predicateType, predicate, signer, {
          created,
          format: opts.legacy ? 'legacy' : 'bundle',
        });
        process.stderr.write(
          `attested ${predicateType} for ${t.store.name}@${t.subject.digest} (${r.format}): ${r.manifest.digest}\n`,
        );
      } finally {
        await client.close();
      }
    },
  );
}
