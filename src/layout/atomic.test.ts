import { execFileSync } from 'node:child_process';
import {
  createReadStream,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exists, streamToTemp, writeFileAtomic } from './atomic.ts';

async function* from(chunks: readonly Uint8Array[], failAfter?: number): AsyncGenerator<Uint8Array> {
  for (const [i, c] of chunks.entries()) {
    if (i === failAfter) throw new Error('source failed');
    yield c;
  }
}

describe('streamToTemp', () => {
  describe('when the source ends', () => {
    it('writes exactly the bytes yielded, for any chunking (empty chunks, more chunks than one writev takes)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-atomic-'));
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 40 }),
          fc.integer({ min: 1, max: 3000 }),
          async (chunks, repeat) => {
            // note: 1024 chunks is IOV_MAX, the most one writev may take; repeats push past it
            const all = Array.from({ length: repeat > 1500 ? 3 : 1 }, () => chunks).flat();
            const many =
              repeat > 2000 ? Array.from({ length: repeat }, (_, i) => Uint8Array.of(i & 255)) : all;
            const seen: number[] = [];
            const tmp = await streamToTemp(join(dir, 'x'), from(many), (c) => seen.push(c.length));
            expect(Buffer.compare(readFileSync(tmp), Buffer.concat(many))).toBe(0);
            expect(seen).toEqual(many.map((c) => c.length));
          },
        ),
        { numRuns: 30 },
      );
    });

    it('writes several MiB spread over batches in order', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-atomic-'));
      const chunks = Array.from({ length: 150 }, (_, i) => Buffer.alloc(65_536, i));
      const tmp = await streamToTemp(join(dir, 'x'), from(chunks));
      expect(Buffer.compare(readFileSync(tmp), Buffer.concat(chunks))).toBe(0);
    });
  });

  describe('when the source throws', () => {
    it('rethrows and leaves no temp file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-atomic-'));
      const chunks = Array.from({ length: 100 }, () => Buffer.alloc(65_536, 1));
      await expect(streamToTemp(join(dir, 'x'), from(chunks, 90))).rejects.toThrow('source failed');
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});

describe('exists', () => {
  it('is false only for a missing path, and throws when it cannot tell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-exists-'));
    writeFileSync(join(dir, 'file'), 'x');
    symlinkSync('loop', join(dir, 'loop'));
    expect(await exists(join(dir, 'file'))).toBe(true);
    expect(await exists(join(dir, 'missing'))).toBe(false); // ENOENT
    expect(await exists(join(dir, 'file', 'below'))).toBe(false); // ENOTDIR
    await expect(exists(join(dir, 'loop'))).rejects.toMatchObject({ code: 'ELOOP' });
  });
});

describe('writeFileAtomic', () => {
  it('replaces a regular file whole, with the mode asked for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-atomic-'));
    const f = join(dir, 'sub', 'key');
    await writeFileAtomic(f, 'one', 0o600);
    await writeFileAtomic(f, 'two', 0o600);
    expect(readFileSync(f, 'utf8')).toBe('two');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['key']);
  });

  it('writes through a symlink and into a FIFO instead of renaming over them (-o /dev/stdout, /dev/null)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-atomic-'));
    writeFileSync(join(dir, 'target'), 'old');
    symlinkSync('target', join(dir, 'link'));
    await writeFileAtomic(join(dir, 'link'), 'new');
    expect(lstatSync(join(dir, 'link')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'target'), 'utf8')).toBe('new');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = new Promise<string>((resolve, reject) => {
      let text = '';
      createReadStream(fifo, 'utf8')
        .on('data', (c) => {
          text += c;
        })
        .on('end', () => resolve(text))
        .on('error', reject);
    });
    await writeFileAtomic(fifo, 'through the pipe');
    expect(await reader).toBe('through the pipe');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });
});
