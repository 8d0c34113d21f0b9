import { createReadStream } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultCacheDir } from '../debian/index.ts';
import { type Digest, Hasher, isDigest, sha256, verifyStream } from '../digest/index.ts';
import { streamToTemp } from '../layout/atomic.ts';
import { writeFileAtomic } from '../layout/index.ts';
import { type Layer, layerFromOpener } from '../oci/index.ts';
import type { SliceReport } from '../slice/index.ts';

/**
 * The build's layer cache: a packages layer is a pure function of (pare version, architecture, epoch, locked .debs,
 * slice settings, image roots, the paths of the user's files), so a warm build with the same lock reuses the
 * compressed layer instead of reading .debs, assembling, slicing and compressing again. Entries are
 * `layers/<key>.json` (descriptor, users/groups of the layer's /etc files, slice report); the blob lives in the
 * content-addressed `blobs/sha256/` it shares with the download cache, written to a temp file, hashed and renamed —
 * and re-verified as it is read, so a corrupt cache can never reach an image. `records/<key>.json` holds what the
 * build records derive from an image (records.ts), so a warm build never unpacks the cached layer.
 */

export interface CachedBase {
  readonly layer: Layer;
  readonly users: readonly (readonly [string, number, number])[];
  readonly groups: readonly (readonly [string, number])[];
  readonly slice: SliceReport | undefined;
}

interface Entry {
  readonly v: 1;
  readonly digest: Digest;
  readonly diffId: Digest;
  readonly size: number;
  readonly mediaType: string;
  readonly users: [string, number, number][];
  readonly groups: [string, number][];
  readonly slice?: SliceReport;
}

/** Returns the cache key of a set of inputs (any JSON value; object keys are sorted first). */
export function cacheKey(inputs: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
          )
        : v;
  return sha256(JSON.stringify(canon(inputs))).slice(7);
}

export class LayerCache {
  readonly dir: string;
  constructor(dir: string = defaultCacheDir()) {
    this.dir = dir;
  }

  #blob(d: Digest): string {
    return join(this.dir, 'blobs', 'sha256', d.slice(7));
  }

  /** Returns the cached base layer for `key`, or undefined (a missing or damaged entry is a miss). */
  async get(key: string): Promise<CachedBase | undefined> {
    let e: Entry;
    try {
      e = JSON.parse(await readFile(join(this.dir, 'layers', `${key}.json`), 'utf8')) as Entry;
      if (e.v !== 1 || !isDigest(e.digest) || !isDigest(e.diffId)) return undefined;
      if ((await stat(this.#blob(e.digest))).size !== e.size) return undefined;
    } catch {
      return undefined;
    }
    const path = this.#blob(e.digest);
    const layer = layerFromOpener({
      open: () =>
        verifyStream(
          createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>,
          e.digest,
          e.size,
          `cached layer ${path}`,
        ),
      digest: e.digest,
      size: e.size,
      mediaType: e.mediaType,
      diffId: e.diffId,
    });
    return { layer, users: e.users, groups: e.groups, slice: e.slice };
  }

  /** Stores a layer's blob and entry under `key` (atomically; concurrent writers of one key write the same bytes). */
  async put(key: string, base: CachedBase): Promise<void> {
    const l = base.layer;
    const digest = await l.digest();
    const path = this.#blob(digest);
    const have = await stat(path).catch(() => undefined);
    if (!have) {
      const h = new Hasher();
      const tmp = await streamToTemp(path, l.compressed(), (c) => h.update(c));
      if (h.digest() !== digest) {
        await rm(tmp, { force: true });
        return;
      }
      await rename(tmp, path);
    }
    const entry: Entry = {
      v: 1,
      digest,
      diffId: await l.diffId(),
      size: await l.size(),
      mediaType: await l.mediaType(),
      users: base.users.map(([n, u, g]) => [n, u, g]),
      groups: base.groups.map(([n, g]) => [n, g]),
      ...(base.slice ? { slice: base.slice } : {}),
    };
    await writeFileAtomic(join(this.dir, 'layers', `${key}.json`), `${JSON.stringify(entry)}\n`);
  }

  /**
   * Returns the text stored under `key` by putRecord, or undefined: what the build records derive from an image
   * (records.ts decides the content and the key; a key covers the image's layers by diff_id).
   */
  async getRecord(key: string): Promise<string | undefined> {
    return readFile(join(this.dir, 'records', `${key}.json`), 'utf8').catch(() => undefined);
  }

  /** Stores `text` under `key` (atomically; concurrent writers of one key write the same bytes). */
  async putRecord(key: string, text: string): Promise<void> {
    await writeFileAtomic(join(this.dir, 'records', `${key}.json`), text);
  }
}
