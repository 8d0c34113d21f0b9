import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Digest, digestHex, Hasher, sha256 } from '../digest/index.ts';
import { DebianError } from '../errors.ts';
import { backoff, discard, getOnce, type ResolvedHttpOptions, RetryableError } from './download.ts';

/**
 * A content-addressed download cache: `<dir>/blobs/sha256/<hex>` holds bytes whose sha256 is `<hex>`, and nothing
 * else ever does. Bytes arrive in `<dir>/tmp/`, are hashed, and only then renamed into `blobs/` (rename is atomic, so a
 * reader sees a whole verified file or nothing; two builds writing the same blob write the same bytes). A download
 * that breaks off is resumed with HTTP Range from `tmp/<hex>.partial`, guarded by `<hex>.lock` (O_EXCL) so two builds
 * do not append to one partial file; the loser downloads to a private temp file instead. Entries are re-hashed when
 * used, so a corrupted cache costs a download, never a wrong byte.
 */

/** Returns the default cache directory: `$XDG_CACHE_HOME/pare`, else `~/.cache/pare`. */
export function defaultCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg?.startsWith('/') ? join(xdg, 'pare') : join(env.HOME || homedir(), '.cache', 'pare');
}

/**
 * Another place verified blobs may already be, tried after the local cache and before the mirror: a registry shared by
 * CI runners (`pare build --cache`). It is trusted for nothing: what it gives is hashed against the digest the lock or
 * the signed index names, exactly as bytes from the mirror are, and anything else is refused (then the mirror is
 * asked).
 */
export interface RemoteBlobs {
  /** Names it in messages, e.g. `registry cache 127.0.0.1:5000/cache`. */
  readonly name: string;
  /** Yields the blob's bytes, or returns undefined when the remote does not have it. */
  open(digest: Digest, size: number): Promise<AsyncIterable<Uint8Array> | undefined>;
  /** Told when the remote gave bytes that are not the blob (or failed): the build goes on from the mirror. */
  readonly onRefused?: (digest: Digest, error: Error) => void;
  /** Told of every blob that came from the mirror, so it can be shared afterwards. */
  readonly onMirrored?: (digest: Digest, size: number, path: string) => void;
}

/** Reports how many bytes of one file are on disk so far (it may go down when a download restarts from zero). */
export type ByteCounter = (done: number) => void;

/** Bytes streamed into the cache (DownloadCache.writer). */
export interface BlobWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Checks the sha256 and moves the blob into place; returns its path. Throws DEBIAN_HASH_MISMATCH. */
  commit(): Promise<string>;
  /** Deletes what was written. */
  abort(): Promise<void>;
}

export class DownloadCache {
  readonly dir: string;
  readonly remote: RemoteBlobs | undefined;
  constructor(dir: string, remote?: RemoteBlobs) {
    this.dir = dir;
    this.remote = remote;
  }

  /** Returns where the blob with `digest` lives (it may not exist). */
  blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  /**
   * Returns the path of the cached blob when present and its size and sha256 are right; a wrong entry is deleted
   * (and undefined returned). Hashing on use is what keeps a damaged cache from poisoning a build.
   */
  async lookup(digest: Digest, size?: number): Promise<string | undefined> {
    const p = this.blobPath(digest);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(p);
    } catch {
      return undefined;
    }
    if ((size !== undefined && st.size !== size) || (await hashFile(p)) !== digest) {
      await unlink(p).catch(() => {});
      return undefined;
    }
    return p;
  }

  /** Returns the verified bytes of a cached blob, or undefined. */
  async read(digest: Digest, size?: number): Promise<Uint8Array | undefined> {
    const p = this.blobPath(digest);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(p);
    } catch {
      return undefined;
    }
    if ((size !== undefined && bytes.length !== size) || sha256(bytes) !== digest) {
      await unlink(p).catch(() => {});
      return undefined;
    }
    return bytes;
  }

  /** Stores `bytes` as the blob `digest` after checking they hash to it; returns its path. Throws DEBIAN_HASH_MISMATCH. */
  async write(digest: Digest, bytes: Uint8Array): Promise<string> {
    const actual = sha256(bytes);
    if (actual !== digest) {
      throw new DebianError(
        'DEBIAN_HASH_MISMATCH',
        `cannot cache blob ${digest}: the bytes hash to ${actual}`,
      );
    }
    const tmp = await this.#tempPath(digestHex(digest));
    await writeFile(tmp, bytes);
    return this.#commit(tmp, digest);
  }

  /**
   * Returns a writer that stores bytes written in order as the blob `digest`: they go to a file in `tmp/`, and
   * `commit` moves it into `blobs/` only when they hash to `digest` (else throws DEBIAN_HASH_MISMATCH and keeps
   * nothing). For data too big to hold at once, such as a decompressed index streamed through a parser.
   */
  async writer(digest: Digest): Promise<BlobWriter> {
    const tmp = await this.#tempPath(digestHex(digest));
    const fh = await open(tmp, 'w');
    const h = new Hasher('sha256');
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await fh.close();
    };
    return {
      write: async (chunk) => {
        h.update(chunk);
        await fh.write(chunk, 0, chunk.length);
      },
      commit: async () => {
        await close();
        const actual = h.digest();
        if (actual !== digest) {
          await unlink(tmp).catch(() => {});
          throw new DebianError(
            'DEBIAN_HASH_MISMATCH',
            `cannot cache blob ${digest}: the bytes hash to ${actual}`,
          );
        }
        return this.#commit(tmp, digest);
      },
      abort: async () => {
        await close().catch(() => {});
        await unlink(tmp).catch(() => {});
      },
    };
  }

  /**
   * Returns the path of blob `digest` (`size` bytes), downloading it from `url` unless already cached. Resumes a
   * partial download with Range, retries network errors/5xx with backoff, and moves the file into `blobs/` only after
   * size and sha256 match. `what` names the file in messages ("package libc6 2.36-9 (pool/…)").
   * Throws DEBIAN_NOT_FOUND (404), DEBIAN_HTTP (after retries), DEBIAN_HASH_MISMATCH (wrong or truncated content;
   * nothing is kept).
   */
  async fetch(
    http: ResolvedHttpOptions,
    url: string,
    digest: Digest,
    size: number,
    what: string,
    onBytes?: ByteCounter,
  ): Promise<string> {
    const cached = await this.lookup(digest, size);
    if (cached) {
      onBytes?.(size);
      return cached;
    }
    const shared = await this.#fromRemote(digest, size, onBytes);
    if (shared) return shared;
    const hex = digestHex(digest);
    const tmpDir = join(this.dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const lock = await acquireLock(join(tmpDir, `${hex}.lock`));
    const partial = lock ? join(tmpDir, `${hex}.partial`) : await this.#tempPath(hex);
    try {
      await this.#download(http, url, partial, digest, size, what, onBytes);
      const path = await this.#commit(partial, digest);
      this.remote?.onMirrored?.(digest, size, path);
      return path;
    } finally {
      if (lock) await unlink(lock).catch(() => {});
      else await unlink(partial).catch(() => {});
    }
  }

  /**
   * Copies blob `digest` from the remote into the cache when it has it: at most `size` bytes are taken, and the blob is
   * kept only when they are exactly `size` bytes hashing to `digest`. Returns its path, or undefined (not there,
   * refused, or unreachable: the caller downloads from the mirror).
   */
  async #fromRemote(
    digest: Digest,
    size: number,
    onBytes: ByteCounter | undefined,
  ): Promise<string | undefined> {
    const remote = this.remote;
    if (!remote) return undefined;
    let w: BlobWriter | undefined;
    try {
      const body = await remote.open(digest, size);
      if (!body) return undefined;
      w = await this.writer(digest);
      let got = 0;
      for await (const c of body) {
        got += c.length;
        if (got > size)
          throw new DebianError(
            'DEBIAN_HASH_MISMATCH',
            `${remote.name} sent more than ${size} bytes for ${digest}`,
          );
        await w.write(c);
        onBytes?.(got);
      }
      if (got !== size)
        throw new DebianError(
          'DEBIAN_HASH_MISMATCH',
          `${remote.name} sent ${got} of ${size} bytes for ${digest}`,
        );
      const path = await w.commit();
      w = undefined;
      return path;
    } catch (e) {
      await w?.abort();
      onBytes?.(0);
      remote.onRefused?.(digest, e as Error);
      return undefined;
    }
  }

  async #download(
    http: ResolvedHttpOptions,
    url: string,
    partial: string,
    digest: Digest,
    size: number,
    what: string,
    onBytes: ByteCounter | undefined,
  ): Promise<void> {
    let restartedClean = false;
    let lastShort: string | undefined;
    for (let attempt = 0; ; attempt++) {
      let have = await fileSize(partial);
      // An empty file (an empty uncompressed index) needs no request: the partial file is the whole of it.
      if (size === 0 && have === 0) await writeFile(partial, new Uint8Array(0));
      if (have > size) {
        await truncate(partial, 0);
        have = 0;
      }
      if (have === size) {
        if ((await hashFile(partial)) === digest) {
          onBytes?.(size);
          return;
        }
        await unlink(partial).catch(() => {});
        if (restartedClean) throw mismatch(url, what, digest, 'its sha256 differs from the index');
        restartedClean = true;
        continue;
      }
      try {
        const res = await getOnce(http, url, have > 0 ? { range: `bytes=${have}-` } : {}, what);
        let offset = have;
        if (res.status === 416) {
          await discard(res);
          await truncate(partial, 0).catch(() => {});
          throw new RetryableError(`cannot resume ${what}: ${url} refused the range`);
        }
        if (res.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
          if (!m || Number(m[1]) !== have) {
            await discard(res);
            await truncate(partial, 0);
            throw new RetryableError(`cannot resume ${what}: ${url} sent an unexpected Content-Range`);
          }
        } else {
          offset = 0;
        }
        onBytes?.(offset);
        const fh = await open(partial, offset === 0 ? 'w' : 'r+');
        try {
          let pos = offset;
          for await (const chunk of res.body ?? []) {
            if (pos + chunk.length > size) {
              // More bytes than the signed index promised: the content is wrong, whatever follows.
              await fh.close().catch(() => {});
              await unlink(partial).catch(() => {});
              throw mismatch(
                url,
                what,
                digest,
                `the server sent more than the ${size} bytes the index lists`,
              );
            }
            await fh.write(chunk, 0, chunk.length, pos);
            pos += chunk.length;
            onBytes?.(pos);
          }
          if (pos < size) {
            lastShort = `truncated: got ${pos} of ${size} bytes`;
            throw new RetryableError(`cannot fetch ${what}: ${url} ended after ${pos} of ${size} bytes`);
          }
        } catch (e) {
          if (e instanceof RetryableError || e instanceof DebianError) throw e;
          throw new RetryableError(`cannot fetch ${what}: connection lost: ${(e as Error).message}`, {
            cause: e,
          });
        } finally {
          await fh.close().catch(() => {});
        }
        if ((await hashFile(partial)) !== digest) {
          onBytes?.(0);
          await unlink(partial).catch(() => {});
          // A resumed file may be wrong only because the old prefix was; one clean restart tells the two apart.
          if (have > 0 && !restartedClean) {
            restartedClean = true;
            continue;
          }
          throw mismatch(url, what, digest, 'its sha256 differs from the index');
        }
        return;
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        if (attempt >= http.retries) {
          if (lastShort) {
            throw new DebianError(
              'DEBIAN_HASH_MISMATCH',
              `cannot use ${what} from ${url}: ${lastShort} after ${attempt + 1} attempts (want ${digest}); the part received is kept outside the cache to resume from — retry later or use another mirror`,
              { url },
            );
          }
          throw new DebianError('DEBIAN_HTTP', `${e.message} (gave up after ${attempt + 1} attempts)`, {
            cause: e,
            url,
          });
        }
        await backoff(http, attempt, e);
      }
    }
  }

  async #tempPath(hex: string): Promise<string> {
    const tmpDir = join(this.dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    return join(tmpDir, `${hex}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  }

  async #commit(tmp: string, digest: Digest): Promise<string> {
    const dest = this.blobPath(digest);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    try {
      await rename(tmp, dest);
    } catch (e) {
      // Another writer (a stale-lock takeover race) committed the same partial first; its blob is verified on use.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && (await this.lookup(digest))) return dest;
      throw e;
    }
    return dest;
  }
}

function mismatch(url: string, what: string, digest: Digest, why: string): DebianError {
  return new DebianError(
    'DEBIAN_HASH_MISMATCH',
    `cannot use ${what} from ${url}: ${why} (want ${digest}); nothing was kept — the mirror is broken or tampered with, retry later or use another mirror`,
    { url },
  );
}

/** Returns the sha256 of a file, streamed. */
export async function hashFile(path: string): Promise<Digest> {
  const h = new Hasher('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest();
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Creates the lock file `path` holding our pid; returns the path, or undefined when another live process (or another
 * download in this one) holds it. A lock left by a dead process (its pid no longer exists) is taken over.
 */
async function acquireLock(path: string): Promise<string | undefined> {
  // The lock appears with our pid already in it (write a temp file, then link(2), which fails if the name exists),
  // so no one ever reads an empty lock and mistakes it for a stale one.
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, String(process.pid));
  try {
    for (let i = 0; i < 2; i++) {
      try {
        await link(tmp, path);
        return path;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return undefined;
        await unlink(path).catch(() => {});
      }
    }
    return undefined;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
