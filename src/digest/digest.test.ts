import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digestStream, formatDigest, parseDigest, sha256, verifyStream } from './index.ts';

async function* chunked(data: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    const end = Math.min(c, data.length);
    if (end > at) {
      yield data.subarray(at, end);
      at = end;
    }
  }
  yield data.subarray(at);
}

describe('parseDigest', () => {
  describe('when the digest is canonical', () => {
    it('round-trips through formatDigest', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => {
          const s = `sha256:${Buffer.from(b).toString('hex')}`;
          expect(formatDigest(parseDigest(s))).toBe(s);
        }),
      );
    });
  });
  describe('when the digest is not canonical', () => {
    it.each([
      ['sha256:ABC', 'DIGEST_INVALID'],
      [`sha256:${'A'.repeat(64)}`, 'DIGEST_INVALID'],
      [`sha256:${'a'.repeat(63)}`, 'DIGEST_INVALID'],
      [`md5:${'a'.repeat(32)}`, 'DIGEST_UNSUPPORTED'],
      ['nocolon', 'DIGEST_INVALID'],
    ])('rejects %s with %s', (s, code) => {
      expect(() => parseDigest(s)).toThrow(expect.objectContaining({ code }));
    });
  });
});

describe('digestStream', () => {
  it('agrees with one-shot hashing for any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.array(fc.nat(4096)), async (data, cuts) => {
        const r = await digestStream(chunked(data, cuts));
        expect(r.digest).toBe(sha256(data));
        expect(r.size).toBe(data.length);
      }),
    );
  });
});

describe('verifyStream', () => {
  const data = new TextEncoder().encode('hello world');
  it('passes matching content through', async () => {
    const out: Uint8Array[] = [];
    for await (const c of verifyStream(chunked(data, [3]), sha256(data), data.length)) out.push(c);
    expect(Buffer.concat(out).toString()).toBe('hello world');
  });
  it('throws DIGEST_MISMATCH for other content', async () => {
    const run = async () => {
      for await (const _ of verifyStream(chunked(data, []), sha256('other'))) {
        /* drain */
      }
    };
    await expect(run()).rejects.toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH' }));
  });
  it('throws SIZE_MISMATCH when longer than promised', async () => {
    const run = async () => {
      for await (const _ of verifyStream(chunked(data, []), sha256(data), 3)) {
        /* drain */
      }
    };
    await expect(run()).rejects.toThrow(expect.objectContaining({ code: 'SIZE_MISMATCH' }));
  });
});
