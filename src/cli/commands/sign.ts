import type { Command } from 'commander';
import { signImage } from '../../attest/index.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';
import { createdTime, openTarget, signerFromFile } from '../signing.ts';

/**
 * `pare sign REF --key cosign.key [--legacy]`: signs an image in a registry (`HOST/REPO[:TAG|@DIGEST]`) or an OCI
 * layout (`oci:DIR[:TAG]`, or the layout's path) the way cosign v3 does (a sigstore bundle attached as an OCI 1.1
 * referrer), or with `--legacy` the way cosign v2 does (`sha256-<hex>.sig`). Encrypted keys take their password from
 * COSIGN_PASSWORD, else a prompt on a terminal.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('sign')
      .description('sign an image (sigstore bundle referrer as cosign v3; --legacy: .sig tag as cosign v2)')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG] or a layout directory')
      .requiredOption('--key <file>', 'private key (cosign encrypted format or PKCS#8 PEM)')
      .option('--legacy', 'write the cosign v2 sha256-<hex>.sig tag instead of a bundle referrer', false),
  ).action(async (reference: string, opts: RegistryFlags & { key: string; legacy: boolean }) => {
    const created = createdTime();
    const signer = await signerFromFile(opts.key);
    const client = lazyClient({ ...opts, quiet: true });
    try {
      const t = await openTarget(reference, client, 'sign');
      const r = await signImage(t.store, t.subject, signer, {
        created,
        format: opts.legacy ? 'legacy' : 'bundle',
      });
      process.stderr.write(
        `signed ${t.store.name}@${t.subject.digest} (${r.format}${r.tag ? ` tag ${r.tag}` : ''}): ${r.manifest.digest}\n`,
      );
    } finally {
      await client.close();
    }
  });
}
