import { readFile } from 'node:fs/promises';
import {
  type ArtifactStore,
  keySigner,
  keyVerifier,
  loadPrivateKey,
  loadPublicKey,
  type Signer,
  type Verifier,
} from '../attest/index.ts';
import { sourceDateEpoch } from '../defaults.ts';
import { UsageError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { cosignPassword } from './password.ts';
import { openReference } from './reference.ts';
import type { LazyClient } from './registry-flags.ts';

/** What sign, verify, attest and verify-attestation share: the image's store and subject, keys, the created time. */

export interface Target {
  readonly store: ArtifactStore;
  readonly subject: Descriptor;
}

/** Opens the store a reference names (registry repository or OCI layout) and the manifest it points at. */
export async function openTarget(reference: string, client: LazyClient, verb: string): Promise<Target> {
  const r = await openReference(reference, client);
  const store = await r.store(verb);
  return { store, subject: await r.subject() };
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
      { cause, file: path },
    );
  }
}

/** Seconds for the `created` annotation: SOURCE_DATE_EPOCH when set (a bad one is a UsageError), else now. */
export function createdTime(): number {
  return sourceDateEpoch() ?? Math.floor(Date.now() / 1000);
}
