import { constants } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  readdir,
  rename,
  rm,
  symlink,
  utimes,
} from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Digest } from '../digest/index.ts';
import { digestHex, parseDigest } from '../digest/index.ts';
import { BaseError, RunError } from '../errors.ts';
import { type Entry, parentPath, type Tree } from '../fstree/index.ts';
import { ContentSpool, type Image, imageToTree, isSpooledFile } from '../oci/index.ts';

/**
 * Unpacking an image for a rootless run: the image's filesystem tree is written once into a content-addressed cache
 * (`$XDG_CACHE_HOME/pare/rootfs/<manifest digest hex>`, default `~/.cache/pare/rootfs/…`) and reused by every later
 * run of the same manifest.
 *
 * Safe for concurrent runs: each run unpacks into a private temp dir in the same parent and renames it into place
 * (atomic); a run that loses the race discards its copy and uses the winner's. A directory at the final path is
 * therefore always complete.
 *
 * Writing never follows a symlink: every parent is a directory this unpack created itself (the tree guarantees that a
 * path's parents are directories, and the unpack refuses anything else), files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, symlinks are written as links and never resolved, hardlinks point only at files this
 * unpack wrote.
 *
 * What a rootless unpack cannot or will not reproduce (reported in `UnpackReport`):
 *   - setuid and setgid bits are dropped: the sandbox runs with no new privileges, so they could not take effect, and
 *     a cache full of setuid-root copies would be a gift to anyone who can reach it on the host;
 *   - owners are not set (a rootless caller cannot chown): bwrap maps the caller's uid to the sandbox user, so every
 *     file appears owned by that user, behind a read-only mount;
 *   - device nodes and FIFOs are skipped (the sandbox gets its own minimal /dev);
 *   - extended attributes (file capabilities, SELinux labels) are not written: no new privileges ignores file
 *     capabilities anyway.
 */

/** What materialising a tree left out or changed, by path (sorted). */
export interface UnpackReport {
  /** Files whose setuid/setgid bits were dropped (directories lose them too, silently). */
  readonly setidDropped: readonly string[];
  readonly devicesSkipped: readonly string[];
  readonly xattrsSkipped: readonly string[];
}

/** Where an unpacked image lives. */
export interface UnpackedRootfs {
  /** Absolute path of the root directory. */
  readonly path: string;
  /** True when the cache already held it (this call wrote nothing). */
  readonly cached: boolean;
  /** What was left out; empty when `cached`. */
  readonly report: UnpackReport;
}

/**
 * A temp dir older than this is left over from a run that was killed mid-unpack and is removed by the next unpack in
 * the same cache. Generous, so a slow unpack of a big image in progress is never taken for one.
 */
export const STALE_TMP_MS = 24 * 60 * 60 * 1000;

/** Files written at once while materialising. */
const WRITE_CONCURRENCY = 16;

/** Returns the rootfs cache directory: `$XDG_CACHE_HOME/pare/rootfs`, else `~/.cache/pare/rootfs`. */
export function rootfsCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  // XDG Base Directory spec: a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache');
  return join(base, 'pare', 'rootfs');
}

/**
 * Writes `tree` below the directory `dest`, which must not exist yet (it is created). Throws RUN_UNPACK_FAILED with
 * the offending path. See the module comment for what is dropped.
 */
export async function materializeTree(tree: Tree, dest: string): Promise<UnpackReport> {
  await mkdir(dest, { mode: 0o700 });
  return writeInto(tree, dest);
}

async function writeInto(tree: Tree, dest: string): Promise<UnpackReport> {
  const setid: string[] = [];
  const devices: string[] = [];
  const xattrs: string[] = [];
  const dirs = new Set<string>(['/']);
  const files = new Set<string>();
  const dirModes: [string, Entry][] = [];
  const work: [string, Entry][] = [];
  const hardlinks: [string, Entry & { kind: 'hardlink' }][] = [];
  const host = (p: string) => (p === '/' ? dest : join(dest, p));
  const fail = (p: string, why: string, cause?: unknown) =>
    new RunError(
      'RUN_UNPACK_FAILED',
      `cannot unpack ${JSON.stringify(p)} into ${JSON.stringify(dest)}: ${why}`,
      { path: p, cause },
    );
  const permBits = (p: string, e: Entry) => {
    // A setgid directory only picks the group of new files, and nothing is created in a read-only root: drop the bit
    // without reporting it (Debian ships /var/local and /var/mail that way).
    if (e.mode & 0o6000 && e.kind !== 'dir') setid.push(p);
    return e.mode & 0o1777;
  };

  for (const [p, e] of tree) {
    if (e.xattrs && Object.keys(e.xattrs).length > 0) xattrs.push(p);
    if (p === '/') {
      dirModes.push([p, e]);
      continue;
    }
    // The tree's invariant says parents are directories; check it against what was actually created.
    if (!dirs.has(parentPath(p)))
      throw fail(p, `its parent ${JSON.stringify(parentPath(p))} is not a directory`);
    switch (e.kind) {
      case 'dir':
        try {
          await mkdir(host(p), { mode: 0o700 });
        } catch (err) {
          throw fail(p, (err as Error).message, err);
        }
        dirs.add(p);
        dirModes.push([p, e]);
        break;
      case 'file':
        files.add(p);
        work.push([p, e]);
        break;
      case 'symlink':
        work.push([p, e]);
        break;
      case 'hardlink':
        hardlinks.push([p, e]);
        break;
      case 'char':
      case 'block':
      case 'fifo':
        devices.push(p);
        break;
    }
  }

  // A big file read out of an image already sits in a spool file of its own on this filesystem: it is moved into place,
  // not copied (written once). Only when no other entry shares that content, since moving it ends the content.
  const uses = new Map<object, number>();
  for (const [, e] of work) if (e.kind === 'file') uses.set(e.content, (uses.get(e.content) ?? 0) + 1);
  const writeOne = async ([p, e]: [string, Entry]) => {
    try {
      if (e.kind === 'symlink') {
        await symlink(e.target, host(p));
        await lutimes(host(p), e.mtime, e.mtime);
        return;
      }
      if (e.kind !== 'file') return;
      if (
        isSpooledFile(e.content) &&
        uses.get(e.content) === 1 &&
        (await moved(e.content.spooledFile, host(p)))
      ) {
        await chmod(host(p), permBits(p, e));
        await utimes(host(p), e.mtime, e.mtime);
        return;
      }
      const fh = await open(
        host(p),
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        let n = 0;
        for await (const chunk of e.content.open()) {
          n += chunk.length;
          await fh.write(chunk);
        }
        if (n !== e.content.size) throw new Error(`content is ${n} bytes, the tree says ${e.content.size}`);
        await fh.chmod(permBits(p, e));
        await fh.utimes(e.mtime, e.mtime);
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw err instanceof RunError ? err : fail(p, (err as Error).message, err);
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(WRITE_CONCURRENCY, work.length) }, async () => {
      while (next < work.length) await writeOne(work[next++]!);
    }),
  );

  for (const [p, e] of hardlinks) {
    if (!files.has(e.target))
      throw fail(p, `its hardlink target ${JSON.stringify(e.target)} is not a regular file in the tree`);
    try {
      await link(host(e.target), host(p));
    } catch (err) {
      throw fail(p, (err as Error).message, err);
    }
  }

  // Deepest first, so a read-only directory is closed only after everything below it was written.
  for (const [p, e] of dirModes.reverse()) {
    try {
      await chmod(host(p), permBits(p, e));
      await utimes(host(p), e.mtime, e.mtime);
    } catch (err) {
      throw fail(p, (err as Error).message, err);
    }
  }
  return { setidDropped: setid.sort(), devicesSkipped: devices.sort(), xattrsSkipped: xattrs.sort() };
}

/**
 * Renames the spool file `from` to `to` (a path this unpack's own directories hold, which does not exist yet) and
 * returns true, or returns false when they are on different filesystems (the caller copies).
 */
async function moved(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw err;
  }
}

/**
 * Returns the cached rootfs for `key` (a manifest digest), calling `makeTree` and writing its result only when the
 * cache does not have it. Concurrent callers with one key all get the same complete directory. `makeTree` gets a
 * scratch directory beside the unpack (same filesystem, removed afterwards) for spooling file bodies, so spooled
 * files can be moved into place (see ContentSpool's `apart`).
 */
export async function unpackCached(
  key: Digest,
  makeTree: (scratch: string) => Promise<Tree>,
  options: { cacheDir?: string } = {},
): Promise<UnpackedRootfs> {
  const { algorithm } = parseDigest(key);
  const cacheDir = options.cacheDir ?? rootfsCacheDir();
  const name = algorithm === 'sha256' ? digestHex(key) : `${algorithm}-${digestHex(key)}`;
  const final = join(cacheDir, name);
  const empty: UnpackReport = { setidDropped: [], devicesSkipped: [], xattrsSkipped: [] };
  if (await isDir(final)) return { path: final, cached: true, report: empty };
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  await sweepStale(cacheDir);
  const tmp = await mkdtemp(join(cacheDir, `.${name}.tmp-`));
  // Named like the unpack's temp dir, so a run killed mid-unpack leaves nothing sweepStale does not remove.
  const scratch = await mkdtemp(join(cacheDir, `.${name}.spool.tmp-`));
  try {
    const tree = await makeTree(scratch);
    const report = await writeInto(tree, tmp);
    try {
      await rename(tmp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await isDir(final))) {
        // Another run finished first; its copy is identical (same manifest digest).
        await forceRemove(tmp);
        return { path: final, cached: true, report: empty };
      }
      throw err;
    }
    return { path: final, cached: false, report };
  } catch (err) {
    await forceRemove(tmp).catch(() => {});
    // A refused image (digest, diff_id, size, limit, unsafe path) keeps its own error: it is bad input, not a failed unpack.
    if (err instanceof BaseError) throw err;
    throw new RunError(
      'RUN_UNPACK_FAILED',
      `cannot unpack image ${key} into ${JSON.stringify(cacheDir)}: ${(err as Error).message}`,
      {
        cause: err,
        path: cacheDir,
      },
    );
  } finally {
    await forceRemove(scratch).catch(() => {});
  }
}

/**
 * Unpacks `image` into the cache (keyed by its manifest digest) and returns where it is. The tree comes from
 * oci.imageToTree: layers applied in order with whiteouts, each layer through the tar reader's escape checks.
 */
export async function unpackImage(
  image: Image,
  options: { cacheDir?: string } = {},
): Promise<UnpackedRootfs> {
  return unpackCached(
    await image.digest(),
    (scratch) => imageToTree(image, { spool: new ContentSpool({ dir: scratch, apart: true }) }),
    options,
  );
}

/** Removes temp dirs (`.<name>.tmp-XXXXXX`) older than STALE_TMP_MS; never fails the unpack. */
async function sweepStale(cacheDir: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!name.startsWith('.') || !name.includes('.tmp-')) continue;
    const st = await lstat(join(cacheDir, name)).catch(() => undefined);
    if (st?.isDirectory() && now - st.mtimeMs > STALE_TMP_MS)
      await forceRemove(join(cacheDir, name)).catch(() => {});
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Removes a tree we wrote, first making its directories writable again (a rootless rm cannot empty a 0555 dir). */
async function forceRemove(dir: string): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    await chmod(d, 0o700).catch(() => {});
    for (const ent of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (ent.isDirectory()) await walk(join(d, ent.name));
    }
  };
  await walk(dir);
  await rm(dir, { recursive: true, force: true });
}
