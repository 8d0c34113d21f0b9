import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  type ArtifactStore,
  keySigner,
  keyVerifier,
  layoutStore,
  loadPrivateKey,
  loadPublicKey,
  registryStore,
  type Signer,
  signImage,
  type Verifier,
} from '../../attest/index.ts';
import { UsageError } from '../../errors.ts';
import { OciLayout } from '../../layout/index.ts';
import type { Descriptor } from '../../oci/index.ts';
import { getManifest, type RegistryClient } from '../../registry/index.ts';
import { cosignPassword } from '../password.ts';
import { clientFromFlags, type RegistryFlags, registryArg, withRegistryFlags } from './copy.ts';

/**
 * `pare sign REF --key cosign.key [--legacy]`: signs an image in a registry (`HOST/REPO[:TAG|@DIGEST]`) or an OCI
 * layout (`oci:DIR[:TAG]`) the way cosign v3 does (a sigstore bundle attached as an OCI 1.1 referrer), or with
 * `--legacy` the way cosign v2 does (`sha256-<hex>.sig`). Encrypted keys take their password from COSIGN_PASSWORD.
 * This file also holds the helpers the other signing commands share.
 */

export interface Target {
  readonly store: ArtifactStore;
  readonly subject: Descriptor;
  close(): Promise<void>;
}

/** Opens the store a reference names and resolves the image manifest it points at. */
export async function openTarget(reference: string, flags: RegistryFlags): Promise<Target> {
  if (reference.startsWith('oci:')) {
    const rest = reference.slice(4);
    const m = /^(.*?)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}|sha256:[0-9a-f]{64}))?$/.exec(rest)!;
    const dir = m[1]!;
    const subject = await resolveLayoutImage(await OciLayout.open(dir), m[2]);
    return { store: await layoutStore(dir), subject, close: async () => {} };
  }
  const ref = registryArg(reference);
  const client: RegistryClient = clientFromFlags({ ...flags, quiet: true });
  const m = await getManifest(client, ref);
  return {
    store: registryStore(client, ref),
    subject: { mediaType: m.mediaType, digest: m.digest, size: m.raw.length },
    close: () => client.close(),
  };
}

/** Signature and referrer entries pare and cosign add to a layout's index.json; never the image a user means. */
const SIGNATURE_TAG = /^sha(256|512)-[0-9a-f]+(\.(sig|att|sbom))?$/;

/**
 * Resolves `ref` (tag or digest) in a layout; without one, the only entry that is not a signature/referrer tag, so a
 * layout stays usable after it was signed.
 */
export async function resolveLayoutImage(layout: OciLayout, ref: string | undefined): Promise<Descriptor> {
  if (ref) return layout.resolve(ref);
  const idx = await layout.readIndexJson();
  const images = idx.manifests.filter(
    (d) => !SIGNATURE_TAG.test(d.annotations?.['org.opencontainers.image.ref.name'] ?? ''),
  );
  if (images.length === 1) return images[0]!;
  return layout.resolve(undefined);
}

/**
 * Loads a private key file as a Signer. An encrypted key takes its password from COSIGN_PASSWORD, else from a prompt
 * when stdin is a terminal (asked only when the key is encrypted).
 */
export async function signerFromFile(path: string): Promise<Signer> {
  const text = await readKeyFile(path);
  return keySigner(await loadPrivateKey(text, { source: path, password: () => cosignPassword() }));
}

/** Loads a PEM public key file as a Verifier. */
export async function verifierFromFile(path: string): Promise<Verifier> {
  return keyVerifier(loadPublicKey(await readKeyFile(path), JSON.stringify(path)));
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot read key ${JSON.stringify(path)}: ${(cause as Error).message}`,
      {
        cause,
        file: path,
      },
    );
  }
}

/** Seconds for the `created` annotation: SOURCE_DATE_EPOCH when set, else now. */
export function createdTime(): number {
  const sde = process.env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && /^\d+$/.test(sde)) return Number(sde);
  return Math.floor(Date.now() / 1000);
}

export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('sign')
      .description('sign an image (sigstore bundle referrer as cosign v3; --legacy: .sig tag as cosign v2)')
      .argument('<reference>', 'HOST[:PORT]/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]')
      .requiredOption('--key <file>', 'private key (cosign encrypted format or PKCS#8 PEM)')
      .option('--legacy', 'write the cosign v2 sha256-<hex>.sig tag instead of a bundle referrer', false),
  ).action(async (reference: string, opts: RegistryFlags & { key: string; legacy: boolean }) => {
    const signer = await signerFromFile(opts.key);
    const t = await openTarget(reference, opts);
    try {
      const r = await signImage(t.store, t.subject, signer, {
        created: createdTime(),
        format: opts.legacy ? 'legacy' : 'bundle',
      });
      process.stderr.write(
        `signed ${t.store.name}@${t.subject.digest} (${r.format}${r.tag ? ` tag ${r.tag}` : ''}): ${r.manifest.digest}\n`,
      );
    } finally {
      await t.close();
    }
  });
}
