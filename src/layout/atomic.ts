import { randomBytes } from 'node:crypto';
import {
  access,
  type FileHandle,
  lstat,
  mkdir,
  open,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LayoutError } from '../errors.ts';

/**
 * Atomic file writes: content goes to a temporary file in the same directory, is flushed to disk, then renamed over
 * the target (rename is atomic on POSIX file systems). A process killed at any point leaves either the old file or
 * the new one, plus at worst a stray `.tmp-*` file that readers ignore.
 */

/** Returns a temp path next to `path`. */
/**
 * True when `path` exists (symlinks followed). False only when it or a parent is missing (ENOENT, ENOTDIR); any other
 * failure (EACCES, EIO, ELOOP) is thrown: a check that could not be made is not a "no".
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw e;
  }
}

export function tempPath(path: string): string {
  return join(dirname(path), `.tmp-${randomBytes(8).toString('hex')}`);
}

/**
 * Writes `data` to `path` atomically: a fresh temp file beside it (created exclusively, with `mode` from the start, so
 * a secret is never readable by others), fsync, rename. Readers see the old file or the whole new one; a killed
 * process leaves at most a `.tmp-*` file. Missing parent directories are created with `dirMode`.
 *
 * A path that is a symlink, or anything but a regular file (`-o /dev/null`, `/dev/stdout`, a FIFO), is written
 * through as it is, never renamed over: replacing it would turn the user's link or device into a plain file (as root,
 * `/dev/null` itself).
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  mode = 0o644,
  dirMode = 0o755,
): Promise<void> {
  const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw e;
  });
  if (st && (st.isSymbolicLink() || !st.isFile())) {
    await writeFile(path, data);
    return;
  }
  await mkdir(dirname(path), { recursive: true, mode: dirMode });
  const tmp = tempPath(path);
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
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

/**
 * Bytes gathered before one `writev`: a handful of syscalls per MiB instead of one per network-sized chunk, while
 * the next batch is read during the write. IOV_MAX (1024 on Linux) bounds the chunk count of one call.
 */
const WRITE_BATCH_BYTES = 4 << 20;
const WRITE_BATCH_CHUNKS = 1024;

/**
 * Streams chunks into a temp file beside `path`; returns its name. The caller renames or removes it. One batched
 * write is in flight while the source is read further; chunks are written as they are, never copied. The file's data
 * is flushed (`fdatasync`: size and blocks, not timestamps) before this returns, so a rename that follows never
 * shows a name whose content a crash could lose.
 */
export async function streamToTemp(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  onChunk?: (c: Uint8Array) => void,
): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  const fh = await open(tmp, 'wx', 0o644);
  let writing: Promise<void> = Promise.resolve();
  try {
    let batch: Uint8Array[] = [];
    let bytes = 0;
    for await (const c of chunks) {
      onChunk?.(c);
      if (c.length === 0) continue;
      batch.push(c);
      bytes += c.length;
      if (bytes >= WRITE_BATCH_BYTES || batch.length >= WRITE_BATCH_CHUNKS) {
        await writing;
        writing = writeAll(fh, batch, bytes);
        batch = [];
        bytes = 0;
      }
    }
    await writing;
    if (bytes > 0) await writeAll(fh, batch, bytes);
    await fh.datasync();
    await fh.close();
    return tmp;
  } catch (e) {
    await writing.catch(() => {});
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes `chunks` (`bytes` long) at the file's position; a short `writev` is finished chunk by chunk. */
async function writeAll(fh: FileHandle, chunks: Uint8Array[], bytes: number): Promise<void> {
  let done = (await fh.writev(chunks)).bytesWritten;
  if (done === bytes) return;
  for (const c of chunks) {
    if (done >= c.length) {
      done -= c.length;
      continue;
    }
    let off = done;
    done = 0;
    while (off < c.length) off += (await fh.write(c, off)).bytesWritten;
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
