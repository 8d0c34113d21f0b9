import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scrypt,
} from 'node:crypto';
import { existsSync } from 'node:fs';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { AttestError } from '../errors.ts';
import { writeFileAtomic } from '../layout/atomic.ts';

/**
 * Signing keys in the formats cosign users already have.
 *
 * The private key file is cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (cosign `pkg/cosign/keys.go`): its body is the
 * JSON that go-securesystemslib `encrypted.Encrypt` writes — `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},
 * "cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}` with every byte string in standard padded base64 (Go's
 * `[]byte` JSON encoding) — and the plaintext is the PKCS#8 DER of the private key. scrypt and ECDSA come from
 * node:crypto; NaCl secretbox (XSalsa20-Poly1305) is not in OpenSSL, so it comes from `@noble/ciphers`.
 *
 * Keys are ECDSA P-256 (what `cosign generate-key-pair` makes) and Ed25519; signatures over P-256 are ASN.1 DER over
 * SHA-256, as cosign and sigstore-go expect.
 */

/** PEM type cosign ≥ 2 writes. */
export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** PEM type cosign 1.x wrote; still accepted on load. */
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

/**
 * The scrypt parameter sets go-securesystemslib accepts on decrypt (legacy 2^15, standard 2^16, OWASP 2^17; r=8, p=1).
 * Anything else is refused before deriving: N is attacker-controlled and a huge N is a memory and CPU bomb.
 */
export const SCRYPT_PARAMS_ALLOWED: readonly ScryptParams[] = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];
/** What `cosign generate-key-pair` writes today (securesystemslib "Standard"). */
export const SCRYPT_PARAMS_DEFAULT: ScryptParams = { N: 65536, r: 8, p: 1 };

const SALT_SIZE = 32;
const NONCE_SIZE = 24;
const BOX_KEY_SIZE = 32;
/** An encrypted key file is a few hundred bytes; refuse anything absurd before parsing it. */
const MAX_KEY_FILE_SIZE = 64 * 1024;

export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** A private key with its public half, ready to sign. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Returns a fresh ECDSA P-256 key pair (what cosign generates). */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey };
}

function scryptAsync(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // scrypt needs 128·N·r bytes; N=2^17 is 128 MiB, over node's 32 MiB default cap.
    const maxmem = 128 * params.N * params.r + 16 * 1024 * 1024;
    scrypt(password, salt, BOX_KEY_SIZE, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
}

function b64(u: Uint8Array): string {
  return Buffer.from(u).toString('base64');
}

/** Returns PEM text: base64 wrapped at 64 columns, as Go's encoding/pem writes it. */
export function encodePem(type: string, der: Uint8Array): string {
  const body = b64(der).replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${type}-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END ${type}-----\n`;
}

/** Returns the type and bytes of the first PEM block in `text`; throws ATTEST_KEY_INVALID when there is none. */
export function decodePem(text: string, source = 'key'): { type: string; der: Uint8Array } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new AttestError('ATTEST_KEY_INVALID', `cannot read ${source}: no PEM block found`);
  const body = m[2]!.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body))
    throw new AttestError('ATTEST_KEY_INVALID', `cannot read ${source}: PEM body is not base64`);
  return { type: m[1]!, der: new Uint8Array(Buffer.from(body, 'base64')) };
}

export interface EncryptKeyOptions {
  readonly scrypt?: ScryptParams;
}

/**
 * Returns `privateKey` as cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`), sealed with `password`.
 * The salt and nonce are random, so two calls give different text for the same key.
 */
export async function encryptPrivateKey(
  privateKey: KeyObject,
  password: string,
  options: EncryptKeyOptions = {},
): Promise<string> {
  const params = options.scrypt ?? SCRYPT_PARAMS_DEFAULT;
  const pkcs8 = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
  const salt = new Uint8Array(randomBytes(SALT_SIZE));
  const nonce = new Uint8Array(randomBytes(NONCE_SIZE));
  const key = await scryptAsync(password, salt, params);
  const ciphertext = xsalsa20poly1305(key, nonce).encrypt(pkcs8);
  // Field order and names as go-securesystemslib's structs marshal them.
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N: params.N, r: params.r, p: params.p }, salt: b64(salt) },
    cipher: { name: 'nacl/secretbox', nonce: b64(nonce) },
    ciphertext: b64(ciphertext),
  });
  return encodePem(SIGSTORE_PRIVATE_KEY_PEM, new TextEncoder().encode(json));
}

function strictB64(v: unknown, field: string, source: string): Uint8Array {
  if (typeof v !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v))
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: field "${field}" is not padded base64`,
    );
  return new Uint8Array(Buffer.from(v, 'base64'));
}

/**
 * Returns the private key sealed in cosign's encrypted key JSON (the PEM body). Throws ATTEST_KEY_INVALID for a
 * malformed file or unsupported kdf/cipher/params, ATTEST_KEY_PASSWORD when the password does not open it.
 */
export async function decryptPrivateKey(
  body: Uint8Array,
  password: string,
  source = 'key',
): Promise<KeyObject> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (cause) {
    throw new AttestError('ATTEST_KEY_INVALID', `cannot read ${source}: encrypted key body is not JSON`, {
      cause,
    });
  }
  const d = doc as {
    kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown };
    cipher?: { name?: unknown; nonce?: unknown };
    ciphertext?: unknown;
  };
  if (d?.kdf?.name !== 'scrypt')
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: kdf ${JSON.stringify(d?.kdf?.name)} is not "scrypt"`,
    );
  if (d.cipher?.name !== 'nacl/secretbox')
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: cipher ${JSON.stringify(d.cipher?.name)} is not "nacl/secretbox"`,
    );
  const p = d.kdf.params;
  const params = SCRYPT_PARAMS_ALLOWED.find((a) => a.N === p?.N && a.r === p?.r && a.p === p?.p);
  if (!params)
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: scrypt parameters ${JSON.stringify(p)} are not one of the accepted sets`,
    );
  const salt = strictB64(d.kdf.salt, 'kdf.salt', source);
  const nonce = strictB64(d.cipher.nonce, 'cipher.nonce', source);
  const ciphertext = strictB64(d.ciphertext, 'ciphertext', source);
  if (nonce.length !== NONCE_SIZE)
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: nonce is ${nonce.length} bytes, want 24`,
    );
  const key = await scryptAsync(password, salt, params);
  let pkcs8: Uint8Array;
  try {
    pkcs8 = xsalsa20poly1305(key, nonce).decrypt(ciphertext);
  } catch (cause) {
    throw new AttestError(
      'ATTEST_KEY_PASSWORD',
      `cannot decrypt ${source}: wrong password (set COSIGN_PASSWORD to the key's password)`,
      { cause },
    );
  }
  try {
    return createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new AttestError('ATTEST_KEY_INVALID', `cannot read ${source}: decrypted key is not PKCS#8`, {
      cause,
    });
  }
}

export interface LoadPrivateKeyOptions {
  /**
   * Password for encrypted keys (cosign reads it from COSIGN_PASSWORD), or a function asked for it only when the key
   * is encrypted (the CLI's terminal prompt).
   */
  readonly password?: string | (() => Promise<string>);
  /** File name for messages. */
  readonly source?: string;
}

/**
 * Returns the key pair in a PEM private key: cosign's encrypted format (needs `password`), PKCS#8 `PRIVATE KEY` or
 * SEC1 `EC PRIVATE KEY`. Throws ATTEST_KEY_INVALID, ATTEST_KEY_PASSWORD or ATTEST_KEY_UNSUPPORTED (not P-256/Ed25519).
 */
export async function loadPrivateKey(
  pem: string | Uint8Array,
  options: LoadPrivateKeyOptions = {},
): Promise<KeyPair> {
  const source = options.source ? JSON.stringify(options.source) : 'private key';
  const text = typeof pem === 'string' ? pem : new TextDecoder().decode(pem);
  if (text.length > MAX_KEY_FILE_SIZE)
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: ${text.length} bytes is too big for a key`,
    );
  const { type, der } = decodePem(text, source);
  let privateKey: KeyObject;
  if (type === SIGSTORE_PRIVATE_KEY_PEM || type === COSIGN_PRIVATE_KEY_PEM) {
    if (options.password === undefined)
      throw new AttestError(
        'ATTEST_KEY_PASSWORD',
        `cannot decrypt ${source}: it is encrypted and no password was given (set COSIGN_PASSWORD)`,
      );
    const password = typeof options.password === 'string' ? options.password : await options.password();
    privateKey = await decryptPrivateKey(der, password, source);
  } else if (type === 'PRIVATE KEY' || type === 'EC PRIVATE KEY') {
    try {
      privateKey = createPrivateKey({
        key: Buffer.from(der),
        format: 'der',
        type: type === 'PRIVATE KEY' ? 'pkcs8' : 'sec1',
      });
    } catch (cause) {
      throw new AttestError('ATTEST_KEY_INVALID', `cannot read ${source}: not a valid ${type}`, { cause });
    }
  } else {
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: PEM type "${type}" is not a private key (want ${SIGSTORE_PRIVATE_KEY_PEM} or PRIVATE KEY)`,
    );
  }
  checkSupported(privateKey, source);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Returns the public key in PEM `PUBLIC KEY` (PKIX) text; throws ATTEST_KEY_INVALID or ATTEST_KEY_UNSUPPORTED. */
export function loadPublicKey(pem: string | Uint8Array, source = 'public key'): KeyObject {
  const text = typeof pem === 'string' ? pem : new TextDecoder().decode(pem);
  const { type, der } = decodePem(text, source);
  if (type !== 'PUBLIC KEY')
    throw new AttestError(
      'ATTEST_KEY_INVALID',
      `cannot read ${source}: PEM type "${type}" is not PUBLIC KEY`,
    );
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new AttestError('ATTEST_KEY_INVALID', `cannot read ${source}: not a valid PKIX public key`, {
      cause,
    });
  }
  checkSupported(key, source);
  return key;
}

function checkSupported(key: KeyObject, source: string): void {
  const t = key.asymmetricKeyType;
  if (t === 'ed25519') return;
  if (t === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return;
  throw new AttestError(
    'ATTEST_KEY_UNSUPPORTED',
    `cannot use ${source}: ${t}${t === 'ec' ? ` ${key.asymmetricKeyDetails?.namedCurve}` : ''} keys are not supported (want ECDSA P-256 or Ed25519)`,
  );
}

/** Returns the PEM `PUBLIC KEY` text of a key (cosign.pub). */
export function publicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return encodePem('PUBLIC KEY', new Uint8Array(pub.export({ format: 'der', type: 'spki' })));
}

/**
 * Returns cosign's key hint: standard base64 of SHA-256 over the PKIX DER public key (cosign `internal/key`,
 * used as `verificationMaterial.publicKey.hint` in sigstore bundles).
 */
export function keyHint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('base64');
}

/** Makes signatures; one method, so tests and future keyless/KMS signers can stand in (after sigstore-js). */
export interface Signer {
  /** Returns the signature over `data` (ASN.1 DER for ECDSA, raw 64 bytes for Ed25519). */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** The PEM public key that verifies this signer's signatures. */
  readonly publicKeyPem: string;
  /** cosign's hint for the public key (see keyHint). */
  readonly hint: string;
}

/** Checks signatures; the counterpart of Signer. */
export interface Verifier {
  /** True when `signature` over `data` is valid for this key. Never throws for a bad signature. */
  verify(data: Uint8Array, signature: Uint8Array): boolean;
  readonly hint: string;
}

function hashFor(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
}

/** Returns a Signer backed by an in-memory private key. */
export function keySigner(pair: KeyPair): Signer {
  return {
    async sign(data) {
      return new Uint8Array(cryptoSign(hashFor(pair.privateKey), data, pair.privateKey));
    },
    publicKeyPem: publicKeyPem(pair.publicKey),
    hint: keyHint(pair.publicKey),
  };
}

/** Returns a Verifier for a public key. */
export function keyVerifier(publicKey: KeyObject): Verifier {
  return {
    verify(data, signature) {
      try {
        return cryptoVerify(hashFor(publicKey), data, publicKey, signature);
      } catch {
        return false;
      }
    },
    hint: keyHint(publicKey),
  };
}

export interface WriteKeyFilesOptions {
  /** Path prefix: writes `<prefix>.key` and `<prefix>.pub` (default "cosign", like cosign generate-key-pair). */
  readonly prefix?: string;
  /** Replace existing files (default false: an existing key is never overwritten). */
  readonly force?: boolean;
  readonly scrypt?: ScryptParams;
}

/**
 * Generates a P-256 key pair and writes `<prefix>.key` (cosign's encrypted format, mode 0600) and `<prefix>.pub`,
 * each atomically (temp file + rename). Returns the paths. Throws ATTEST_KEY_EXISTS rather than overwrite a key.
 */
export async function writeKeyFiles(
  password: string,
  options: WriteKeyFilesOptions = {},
): Promise<{ privatePath: string; publicPath: string; pair: KeyPair }> {
  const prefix = options.prefix ?? 'cosign';
  const privatePath = `${prefix}.key`;
  const publicPath = `${prefix}.pub`;
  if (!options.force) {
    for (const p of [privatePath, publicPath]) {
      if (existsSync(p))
        throw new AttestError(
          'ATTEST_KEY_EXISTS',
          `cannot write ${JSON.stringify(p)}: it exists (remove it or pass --force)`,
          { path: p },
        );
    }
  }
  const pair = generateKeyPair();
  const enc = await encryptPrivateKey(
    pair.privateKey,
    password,
    options.scrypt ? { scrypt: options.scrypt } : {},
  );
  await writeFileAtomic(privatePath, enc, 0o600);
  await writeFileAtomic(publicPath, publicKeyPem(pair.publicKey), 0o644);
  return { privatePath, publicPath, pair };
}
