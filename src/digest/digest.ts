import { createHash, type Hash } from 'node:crypto';
import { DigestError } from '../errors.ts';

/**
 * Content digests as the OCI image-spec defines them: `algorithm ":" encoded`
 * (https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests).
 * A `Digest` is the canonical string form; `parseDigest` rejects anything non-canonical.
 */
export type Digest = `${DigestAlgorithm}:${string}`;
export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
}

/** Returns the algorithm and lowercase hex of a digest string; throws DIGEST_INVALID or DIGEST_UNSUPPORTED. */
export function parseDigest(s: string): ParsedDigest {
  const colon = s.indexOf(':');
  if (colon <= 0)
    throw new DigestError('DIGEST_INVALID', `cannot parse digest ${JSON.stringify(s)}: no algorithm`);
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new DigestError(
      'DIGEST_UNSUPPORTED',
      `cannot parse digest ${JSON.stringify(s)}: algorithm ${JSON.stringify(algorithm)} is not sha256 or sha512`,
    );
  }
  // The spec allows only lowercase hex for the registered algorithms; upper case would give two names to one blob.
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new DigestError(
      'DIGEST_INVALID',
      `cannot parse digest ${JSON.stringify(s)}: want ${HEX_LENGTH[algorithm]} lowercase hex digits`,
    );
  }
  return { algorithm, hex };
}

/** Returns the canonical string of a parsed digest. */
export function formatDigest(d: ParsedDigest): Digest {
  return `${d.algorithm}:${d.hex}`;
}

/** True when `s` is a canonical digest string. */
export function isDigest(s: string): s is Digest {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** Returns `s` typed as a Digest after checking it; throws DIGEST_INVALID. */
export function asDigest(s: string): Digest {
  parseDigest(s);
  return s as Digest;
}

/** Returns the sha256 digest of bytes or a string (UTF-8). */
export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Returns the hex part of a digest (no algorithm). */
export function digestHex(d: Digest): string {
  return parseDigest(d).hex;
}

/**
 * A running hash with a byte count, for hashing a stream while it passes through.
 * `digest()` may be called once, after the last `update`.
 */
export class Hasher {
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;
  #size = 0;
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): this {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    return this;
  }
  get size(): number {
    return this.#size;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.#hash.digest('hex')}`;
  }
}

/** Returns digest and size of everything an async iterable yields, consuming it. */
export async function digestStream(
  chunks: AsyncIterable<Uint8Array>,
  algorithm: DigestAlgorithm = 'sha256',
): Promise<{ digest: Digest; size: number }> {
  const h = new Hasher(algorithm);
  for await (const c of chunks) h.update(c);
  return { digest: h.digest(), size: h.size };
}

/**
 * Yields the chunks of `source` unchanged and, at the end, throws DIGEST_MISMATCH / SIZE_MISMATCH if they do not
 * hash to `expected` (or are not `size` bytes). Consumers must not make the bytes visible before the end is reached.
 */
export async function* verifyStream(
  source: AsyncIterable<Uint8Array>,
  expected: Digest,
  size?: number,
  what = 'blob',
): AsyncGenerator<Uint8Array> {
  const v = new Verifier(expected, size, what);
  for await (const c of source) {
    v.update(c);
    yield c;
  }
  v.check();
}

/**
 * Hashes bytes as they pass and checks them against a digest and size: `update` throws SIZE_MISMATCH as soon as
 * there are more bytes than promised, `check` throws SIZE_MISMATCH / DIGEST_MISMATCH at the end (naming `what`).
 */
export class Verifier {
  readonly expected: Digest;
  readonly size: number | undefined;
  readonly what: string;
  #h: Hasher;
  constructor(expected: Digest, size?: number, what = 'blob') {
    this.expected = expected;
    this.size = size;
    this.what = what;
    this.#h = new Hasher(parseDigest(expected).algorithm);
  }
  /** Bytes seen so far. */
  get seen(): number {
    return this.#h.size;
  }
  update(c: Uint8Array): void {
    this.#h.update(c);
    if (this.size !== undefined && this.#h.size > this.size) {
      throw new DigestError(
        'SIZE_MISMATCH',
        `cannot verify ${this.what} ${this.expected}: more than the ${this.size} bytes promised`,
        { expected: String(this.size) },
      );
    }
  }
  check(): void {
    if (this.size !== undefined && this.#h.size !== this.size) {
      throw new DigestError(
        'SIZE_MISMATCH',
        `cannot verify ${this.what} ${this.expected}: got ${this.#h.size} bytes, want ${this.size}`,
        { expected: String(this.size), actual: String(this.#h.size) },
      );
    }
    const actual = this.#h.digest();
    if (actual !== this.expected) {
      throw new DigestError(
        'DIGEST_MISMATCH',
        `cannot verify ${this.what}: content hashes to ${actual}, want ${this.expected}`,
        { expected: this.expected, actual },
      );
    }
  }
}
