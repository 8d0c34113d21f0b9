import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { LayoutError } from '../errors.ts';

/**
 * Atomic file writes: content goes to a temporary file in the same directory, is flushed to disk, then renamed over
 * the target (rename is atomic on POSIX file systems). A process killed at any point leaves either the old file or
 * the new one, plus at worst a stray `.tmp-*` file that readers ignore.
 */

/** Returns a temp path next to `path`. */
export function tempPath(path: string): string {
  return join(dirname(path), `.tmp-${randomBytes(8).toString('hex')}`);
}

/** Writes `data` to `path` atomically (temp + fsync + rename), creating parent directories. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  try {
    await writeFile(tmp, data, { mode });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Streams chunks into a temp file beside `path`; returns its name. The caller renames or removes it. */
export async function streamToTemp(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  onChunk?: (c: Uint8Array) => void,
): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  async function* tap(): AsyncGenerator<Uint8Array> {
    for await (const c of chunks) {
      onChunk?.(c);
      yield c;
    }
  }
  try {
    await pipeline(Readable.from(tap(), { objectMode: false }), createWriteStream(tmp, { mode: 0o644 }));
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** A lock held as an exclusively created file with the holder's pid; stale locks of dead processes are taken over. */
export async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (await isStale(lockPath)) {
        await unlink(lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) {
        throw new LayoutError(
          'LAYOUT_LOCKED',
          `cannot lock ${JSON.stringify(lockPath)}: another pare process holds it; if none runs, remove the file`,
          {
            path: lockPath,
          },
        );
      }
      await sleep(20 + Math.random() * 30);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => {});
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  try {
    const { readFile } = await import('node:fs/promises');
    const pid = Number((await readFile(lockPath, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) {
      // A lock file with no pid yet may be mid-creation; only call it stale once it is old.
      const st = await stat(lockPath);
      return Date.now() - st.mtimeMs > 10_000;
    }
    try {
      process.kill(pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false;
  }
}
