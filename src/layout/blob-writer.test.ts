import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { sha256 } from '../digest/index.ts';
import { BlobWriter } from './blob-writer.ts';

// Each test's directory lies under one removed when the file finishes (each holds up to ~20 MiB).
const root = tempDir('pare-blobwriter-');
const dir = () => mkdtempSync(join(root, 'w-'));

describe('BlobWriter', () => {
  it('writes chunks at their offsets, gives each back when written, and renames after the digest matched', async () => {
    const d = dir();
    const data = randomBytes(20 << 20); // past the background-flush threshold
    const path = join(d, 'blob');
    const w = await BlobWriter.create(path, { digest: sha256(data), size: data.length });
    let returned = 0;
    for (let off = 0; off < data.length; off += 256 << 10) {
      w.write(data.subarray(off, off + (256 << 10)), () => returned++);
    }
    expect(w.offset).toBe(data.length);
    expect(await w.commit()).toEqual({ digest: sha256(data), size: data.length });
    expect(returned).toBe(80);
    expect(readFileSync(path).equals(data)).toBe(true);
    expect(readdirSync(d)).toEqual(['blob']);
  });

  it('refuses a wrong digest or a short blob at commit and leaves nothing behind', async () => {
    const d = dir();
    const w = await BlobWriter.create(join(d, 'blob'), {
      digest: sha256(Buffer.from('b')),
      what: 'blob from x',
    });
    w.write(Buffer.from('a'));
    await expect(w.commit()).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
      message: expect.stringMatching(/blob from x/),
    });
    const short = await BlobWriter.create(join(d, 'blob'), { digest: sha256(Buffer.from('ab')), size: 2 });
    short.write(Buffer.from('a'));
    await expect(short.commit()).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    expect(readdirSync(d)).toEqual([]);
  });

  it('throws as soon as more bytes than promised arrive, and abort removes the temp file', async () => {
    const d = dir();
    const w = await BlobWriter.create(join(d, 'blob'), { digest: sha256(Buffer.from('ab')), size: 2 });
    w.write(Buffer.from('ab'));
    expect(() => w.write(Buffer.from('c'))).toThrow(expect.objectContaining({ code: 'SIZE_MISMATCH' }));
    await w.abort();
    expect(readdirSync(d)).toEqual([]);
    expect(existsSync(join(d, 'blob'))).toBe(false);
  });
});
