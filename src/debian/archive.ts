import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { type Digest, Hasher, sha256 } from '../digest/index.ts';
import { DebianError } from '../errors.ts';
import { type Content, hostFileContentSized } from '../fstree/index.ts';
import { DownloadCache, defaultCacheDir, type RemoteBlobs } from './cache.ts';
import {
  fetchBytes,
  type HttpOptions,
  mapLimit,
  normalizeHttpOptions,
  type ResolvedHttpOptions,
} from './download.ts';
import { type Keyring, loadKeyring } from './keyring.ts';
import { type ArchiveSuite, type DebianSource, type MirrorOptions, resolveSuites } from './mirror.ts';
import { detachRecord, IndexScanner, type PackageRecord } from './packages.ts';
import {
  checkRelease,
  MAX_RELEASE_BYTES,
  parseRelease,
  type Release,
  type ReleaseFile,
  verifyClearsigned,
  verifyDetached,
} from './release.ts';
import { xzDecompress } from './xz.ts';

/**
 * The secure-apt chain (apt-secure(8)) as a source of verified bytes:
 *
 *   InRelease ──openpgp verify (archive keyring)──▶ Release (suite, dates checked)
 *     └─ SHA256 list ──size+hash before decompression──▶ Packages(.xz|.gz) ──▶ PackageRecord[]
 *          └─ Size + SHA256 per package ──checked before use──▶ pool/…/*.deb in the cache
 *
 * Every byte leaves this module only after it matched a hash that chains up to a signature. Downloads go through the
 * content-addressed DownloadCache, so a second build reads indexes and .debs from disk.
 */

/** Options for `openArchive`: where to look (mirror, env, apt dir), how to fetch, and the clock. */
export interface ArchiveOptions extends MirrorOptions, HttpOptions {
  /** Debian architectures whose indexes are read; default ["amd64"]. */
  readonly architectures?: readonly string[];
  /** Cache directory; default `$XDG_CACHE_HOME/pare` (see defaultCacheDir). */
  readonly cacheDir?: string;
  /** Root for the system keyring lookup; default "/". */
  readonly keyringRoot?: string;
  /** The clock Valid-Until and Date are checked against; default the system clock. */
  readonly now?: () => Date;
  readonly maxClockSkewMs?: number;
  /** Parallel downloads; default 8. */
  readonly concurrency?: number;
  /**
   * Which Packages file to fetch when the Release offers several, in order of preference; default gz, xz, none.
   * gz first because on a mirror faster than a few MB/s its larger download costs less than xz's slower
   * decompression (bookworm/main amd64: 12 MB gz inflates in ~0.4 s, 8.8 MB xz in ~1.4 s); put xz first on slow links.
   */
  readonly indexCompression?: readonly IndexCompression[];
  /** Called as downloads progress; the CLI draws the bar. Never called after the returned promise settles. */
  readonly onProgress?: (event: DownloadProgress) => void;
  /** A shared store asked for each verified file before the mirror (a registry cache: `pare build --cache`). */
  readonly remote?: RemoteBlobs;
}

/** Progress of a batch of downloads (index files or packages). */
export interface DownloadProgress {
  readonly phase: 'index' | 'package';
  readonly filesDone: number;
  readonly filesTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** The file whose bytes just arrived. */
  readonly current: string;
}

/** One suite after its Release verified: what the lockfile records about the archive. */
export interface SuiteState {
  readonly suite: string;
  readonly kind: ArchiveSuite['kind'];
  readonly baseUrl: string;
  /** sha256 of the InRelease bytes (or of Release when the archive has no InRelease). */
  readonly inRelease: Digest;
  readonly release: Release;
}

/** A verified .deb in the cache. */
export interface DebFile {
  readonly record: PackageRecord;
  /** Cache path; its bytes match `record.sha256`. */
  readonly path: string;
  readonly content: Content;
}

interface Resolved {
  readonly suites: readonly ArchiveSuite[];
  readonly http: ResolvedHttpOptions;
  readonly cache: DownloadCache;
  readonly architectures: readonly string[];
  readonly components: readonly string[];
  readonly now: () => Date;
  readonly concurrency: number;
  readonly options: ArchiveOptions;
}

/** Names of the binary index files. */
const INDEX_NAMES = ['Packages.xz', 'Packages.gz', 'Packages'] as const;

/** Index compressions in the default order of preference (see ArchiveOptions.indexCompression). */
export const DEFAULT_INDEX_COMPRESSION: readonly IndexCompression[] = ['gz', 'xz', 'none'];
export type IndexCompression = 'gz' | 'xz' | 'none';

/**
 * Returns the archive for `source` with the Release of every suite fetched and verified (InRelease, or Release +
 * Release.gpg when the mirror has no InRelease). No index or package is fetched yet.
 * Throws DEBIAN_NO_MIRROR, DEBIAN_NO_KEYRING, DEBIAN_HTTP, DEBIAN_NOT_FOUND, DEBIAN_SIGNATURE, DEBIAN_EXPIRED,
 * DEBIAN_SUITE_MISMATCH, DEBIAN_RELEASE_INVALID.
 * @example
 *   const archive = await openArchive({ suite: 'bookworm' }, { architectures: ['amd64'] });
 *   const records = await archive.packages();
 */
export async function openArchive(
  source: DebianSource,
  options: ArchiveOptions = {},
): Promise<DebianArchive> {
  const suites = await resolveSuites(source, options);
  const snapshotTime = source.snapshot ? snapshotDate(source.snapshot) : undefined;
  const r: Resolved = {
    suites,
    http: normalizeHttpOptions(options),
    cache: new DownloadCache(options.cacheDir ?? defaultCacheDir(options.env), options.remote),
    architectures: options.architectures ?? ['amd64'],
    components: source.components ?? ['main'],
    // A snapshot shows the archive as it was: its Release was current then, so check it against that instant.
    now: snapshotTime ? () => snapshotTime : (options.now ?? (() => new Date())),
    concurrency: options.concurrency ?? 8,
    options,
  };
  const keyrings = new Map<string, Promise<Keyring>>();
  const keyringFor = (spec: string | undefined) => {
    const k = spec ?? '';
    let p = keyrings.get(k);
    if (!p) {
      p = loadKeyring(spec, { root: options.keyringRoot });
      keyrings.set(k, p);
    }
    return p;
  };
  const states = await Promise.all(suites.map(async (s) => fetchRelease(r, s, await keyringFor(s.keyring))));
  return new DebianArchive(r, states);
}

/** Returns the instant of a `YYYYMMDDTHHMMSSZ` snapshot timestamp. */
export function snapshotDate(ts: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(ts);
  if (!m) {
    throw new DebianError(
      'DEBIAN_SOURCES_INVALID',
      `cannot use snapshot ${JSON.stringify(ts)}: want YYYYMMDDTHHMMSSZ`,
    );
  }
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

/** Returns the snapshot timestamp (`YYYYMMDDTHHMMSSZ`) of an instant, rounded up to the second. */
export function formatSnapshot(d: Date): string {
  const t = new Date(Math.ceil(d.getTime() / 1000) * 1000).toISOString();
  return t.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

async function fetchRelease(r: Resolved, suite: ArchiveSuite, keyring: Keyring): Promise<SuiteState> {
  const dists = `${suite.baseUrl}dists/${suite.name}/`;
  const now = r.now();
  let text: string;
  let raw: Uint8Array;
  let source = `${dists}InRelease`;
  try {
    raw = await fetchBytes(r.http, source, MAX_RELEASE_BYTES, `InRelease of suite ${suite.name}`);
    text = await verifyClearsigned(new TextDecoder().decode(raw), keyring, source, now);
  } catch (e) {
    if (!(e instanceof DebianError && e.code === 'DEBIAN_NOT_FOUND')) throw e;
    // No InRelease: the older Release + detached Release.gpg pair (apt does the same fallback, never on a bad
    // signature).
    source = `${dists}Release`;
    try {
      raw = await fetchBytes(r.http, source, MAX_RELEASE_BYTES, `Release of suite ${suite.name}`);
    } catch (e2) {
      if (!(e2 instanceof DebianError && e2.code === 'DEBIAN_NOT_FOUND')) throw e2;
      const off = suite.kind === 'release' ? '' : `, or set debian.${suite.kind}: false`;
      throw new DebianError(
        'DEBIAN_NOT_FOUND',
        `cannot find suite ${JSON.stringify(suite.name)} at ${dists}: neither InRelease nor Release exists; check debian.suite and the mirror (from ${suite.origin})${off}`,
        { cause: e2, url: `${dists}InRelease` },
      );
    }
    const sig = await fetchBytes(
      r.http,
      `${dists}Release.gpg`,
      1 << 20,
      `Release.gpg of suite ${suite.name}`,
    );
    await verifyDetached(raw, sig, keyring, `${dists}Release.gpg`, now);
    text = new TextDecoder().decode(raw);
  }
  const release = parseRelease(text, source);
  checkRelease(release, { suite: suite.name, now, maxClockSkewMs: r.options.maxClockSkewMs }, source);
  return { suite: suite.name, kind: suite.kind, baseUrl: suite.baseUrl, inRelease: sha256(raw), release };
}

/** A Debian archive whose Releases are verified; reads indexes and packages through the cache. */
export class DebianArchive {
  readonly #r: Resolved;
  /** The suites in order: release, updates, security (as configured). */
  readonly suites: readonly SuiteState[];

  constructor(r: Resolved, suites: readonly SuiteState[]) {
    this.#r = r;
    this.suites = suites;
  }

  /** The architectures whose indexes `packages()` reads. */
  get architectures(): readonly string[] {
    return this.#r.architectures;
  }

  /** The cache downloads go to. */
  get cache(): DownloadCache {
    return this.#r.cache;
  }

  /**
   * Returns the records of every suite × component × architecture index, in that order (the resolver decides
   * between versions; security and updates come after the release). Indexes come from the cache when present.
   */
  async packages(): Promise<PackageRecord[]> {
    const jobs: { suite: SuiteState; component: string; arch: string }[] = [];
    for (const suite of this.suites)
      for (const component of this.#r.components)
        for (const arch of this.#r.architectures) jobs.push({ suite, component, arch });
    const lists = await mapLimit(jobs, this.#r.concurrency, (j) =>
      this.index(j.suite.suite, j.component, j.arch),
    );
    return lists.flat();
  }

  /**
   * Returns the records of one Packages index, verified against the suite's Release before it is decompressed.
   * Prefers `.xz`, then `.gz`, then plain; fetches `by-hash/SHA256/<hex>` when the Release offers it (no race with a
   * mirror update) and falls back to the plain name when by-hash is missing. Throws DEBIAN_NOT_FOUND when the suite
   * has no such index, DEBIAN_HASH_MISMATCH, DEBIAN_HTTP, DEBIAN_INDEX_INVALID.
   */
  async index(suiteName: string, component: string, arch: string): Promise<PackageRecord[]> {
    const suite = this.#suite(suiteName);
    const records = await this.#indexRecords(suite, component, `${component}/binary-${arch}`);
    // As apt does: binary-all is a separate index only when the Release lists "all" among its Architectures and does
    // not say "No-Support-for-Architecture-all: Packages" (then arch-all packages are in every binary-<arch>).
    if (
      suite.release.architectures.includes('all') &&
      !suite.release.paragraph.get('No-Support-for-Architecture-all') &&
      INDEX_NAMES.some((n) => suite.release.files.has(`${component}/binary-all/${n}`))
    ) {
      records.push(...(await this.#indexRecords(suite, component, `${component}/binary-all`)));
    }
    return records;
  }

  /**
   * Streams one index through an IndexScanner: from the decompressed copy in the cache when it is there, else from
   * the compressed file (fetched into the cache) through the decompressor, storing the decompressed bytes on the way.
   * Neither file is ever held whole in memory; the records are returned only after every hash matched.
   */
  async #indexRecords(suite: SuiteState, component: string, dir: string): Promise<PackageRecord[]> {
    const rel = suite.release;
    const dists = `${suite.baseUrl}dists/${suite.suite}/`;
    const plain = rel.files.get(`${dir}/Packages`);
    const scanner = (source: string) => new IndexScanner({ suite: suite.suite, component, source });
    // The uncompressed index is listed even when only compressed files are served; its hash keys the decompressed
    // copy in the cache, so a warm build skips decompression.
    if (plain) {
      const records = await this.#cachedIndex(plain, scanner(`${dists}${plain.path}`));
      if (records) return records;
    }
    const order = this.#r.options.indexCompression ?? DEFAULT_INDEX_COMPRESSION;
    const file = order
      .map((c) => rel.files.get(`${dir}/Packages${c === 'none' ? '' : `.${c}`}`))
      .find((f) => f !== undefined);
    if (!file) {
      throw new DebianError(
        'DEBIAN_NOT_FOUND',
        `cannot find index ${dir}/Packages in suite ${suite.suite} (${dists}Release lists none); check debian.components and the platform's architecture`,
        { url: `${dists}Release` },
      );
    }
    const path = await this.#fetchIndexFile(suite, file);
    const source = `${dists}${file.path}`;
    const checked = plain && file !== plain ? plain : undefined;
    const mismatch = (why: string, cause?: unknown) =>
      new DebianError(
        'DEBIAN_HASH_MISMATCH',
        `cannot use index ${source}: decompressed it does not match ${checked?.path} of the Release (${checked?.sha256}, ${checked?.size} bytes): ${why}`,
        { cause, url: source },
      );
    // The compressed file was verified when it was fetched; it is hashed again as it is read, since it is read again.
    const raw = new Hasher('sha256');
    const compressed = verifiedRead(path, raw);
    const data = file.path.endsWith('.xz')
      ? xzDecompress(compressed, source)
      : file.path.endsWith('.gz')
        ? gunzipStream(compressed)
        : compressed;
    const s = scanner(source);
    const writer = checked ? await this.#r.cache.writer(checked.sha256) : undefined;
    let parseError: unknown;
    let n = 0;
    try {
      try {
        for await (const chunk of data) {
          n += chunk.length;
          // Never more bytes than the Release promised (a decompression bomb stops here).
          if (checked && n > checked.size) throw mismatch(`it inflates to more than ${checked.size} bytes`);
          await writer?.write(chunk);
          // A parse error is reported only once the bytes are known to be the signed ones.
          if (parseError === undefined) {
            try {
              s.push(chunk);
            } catch (e) {
              parseError = e;
            }
          }
        }
      } catch (e) {
        if (e instanceof DebianError && e.code === 'DEBIAN_HASH_MISMATCH') throw e;
        throw new DebianError(
          'DEBIAN_INDEX_INVALID',
          `cannot decompress index ${source}: ${(e as Error).message}`,
          {
            cause: e,
            url: source,
          },
        );
      }
      if (raw.digest() !== file.sha256) {
        throw new DebianError(
          'DEBIAN_HASH_MISMATCH',
          `cannot read cached index ${path}: it changed after it was verified`,
        );
      }
      if (checked) {
        if (n !== checked.size) throw mismatch(`got ${n} bytes`);
        try {
          await writer!.commit();
        } catch (e) {
          if (e instanceof DebianError && e.code === 'DEBIAN_HASH_MISMATCH') throw mismatch(e.message, e);
          throw e;
        }
      }
    } catch (e) {
      await writer?.abort();
      throw e;
    }
    if (parseError !== undefined) throw parseError;
    return s.end();
  }

  /** Returns the records of the cached decompressed index `plain`, or undefined when it is absent or damaged. */
  async #cachedIndex(plain: ReleaseFile, s: IndexScanner): Promise<PackageRecord[] | undefined> {
    const path = this.#r.cache.blobPath(plain.sha256);
    const h = new Hasher('sha256');
    let parseError: unknown;
    try {
      for await (const chunk of verifiedRead(path, h)) {
        if (parseError !== undefined) continue;
        try {
          s.push(chunk);
        } catch (e) {
          parseError = e;
        }
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    if (h.size !== plain.size || h.digest() !== plain.sha256) {
      await unlink(path).catch(() => {});
      return undefined;
    }
    if (parseError !== undefined) throw parseError;
    return s.end();
  }

  async #fetchIndexFile(suite: SuiteState, file: ReleaseFile): Promise<string> {
    const dists = `${suite.baseUrl}dists/${suite.suite}/`;
    const url = `${dists}${file.path}`;
    const what = `index ${file.path} of suite ${suite.suite}`;
    const progress = this.#progress('index', 1, file.size);
    if (suite.release.acquireByHash) {
      const dir = file.path.slice(0, file.path.lastIndexOf('/'));
      const byHash = `${dists}${dir}/by-hash/SHA256/${file.sha256.slice('sha256:'.length)}`;
      try {
        const path = await this.#r.cache.fetch(this.#r.http, byHash, file.sha256, file.size, what, (n) =>
          progress(file.path, n),
        );
        progress(file.path, file.size, true);
        return path;
      } catch (e) {
        if (!(e instanceof DebianError && e.code === 'DEBIAN_NOT_FOUND')) throw e;
      }
    }
    const path = await this.#r.cache.fetch(this.#r.http, url, file.sha256, file.size, what, (n) =>
      progress(file.path, n),
    );
    progress(file.path, file.size, true);
    return path;
  }

  /** Returns the URL of a package's pool file. */
  debUrl(record: PackageRecord): string {
    return `${this.#suite(record.suite).baseUrl}${record.filename}`;
  }

  /**
   * Returns every package's .deb from the cache, downloading the missing ones (at most `concurrency` at once), each
   * checked against the index's Size and SHA256 before it is returned. Results are in input order.
   * Throws DEBIAN_HASH_MISMATCH, DEBIAN_NOT_FOUND, DEBIAN_HTTP naming the package.
   */
  async fetchDebs(records: readonly PackageRecord[]): Promise<DebFile[]> {
    // Each DebFile lives as long as the build; its record must not keep the whole index (see detachRecord).
    return fetchPool(
      this.#r,
      records.map((record) => ({ record: detachRecord(record), url: this.debUrl(record) })),
    );
  }

  #progress(phase: DownloadProgress['phase'], filesTotal: number, bytesTotal: number) {
    return progressTracker(this.#r.options.onProgress, phase, filesTotal, bytesTotal);
  }

  #suite(name: string): SuiteState {
    const s = this.suites.find((x) => x.suite === name);
    if (!s) {
      throw new DebianError(
        'DEBIAN_NOT_FOUND',
        `cannot find suite ${JSON.stringify(name)}: the archive has ${this.suites.map((x) => x.suite).join(', ')}`,
      );
    }
    return s;
  }
}

/** Yields the bytes of the file at `path` in 1 MiB reads, feeding each to `hash` first. */
async function* verifiedRead(path: string, hash: Hasher): AsyncGenerator<Buffer> {
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(c as Buffer);
    yield c as Buffer;
  }
}

/** Yields the inflated bytes of a gzip stream (all members, as gunzip(1) does). */
async function* gunzipStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const z = createGunzip({ chunkSize: 256 << 10 });
  const feeding = pipeline(Readable.from(source), z).catch((e: unknown) => {
    z.destroy(e as Error);
  });
  try {
    for await (const c of z) yield c as Buffer;
  } finally {
    z.destroy();
    await feeding;
  }
}

/** Downloads pool files into the cache in parallel; shared by DebianArchive and the lockfile path. */
export async function fetchPool(
  r: Pick<Resolved, 'http' | 'cache' | 'concurrency' | 'options'>,
  items: readonly { record: PackageRecord; url: string }[],
): Promise<DebFile[]> {
  const total = items.reduce((n, i) => n + i.record.size, 0);
  const progress = progressTracker(r.options.onProgress, 'package', items.length, total);
  return mapLimit(items, r.concurrency, async ({ record, url }) => {
    const what = `package ${record.name} ${record.version} ${record.architecture} (${record.filename})`;
    const path = await r.cache.fetch(r.http, url, record.sha256, record.size, what, (n) =>
      progress(record.filename, n),
    );
    progress(record.filename, record.size, true);
    return { record, path, content: hostFileContentSized(path, record.size) };
  });
}

/** Returns a per-file byte reporter that turns per-file counts into batch totals. */
function progressTracker(
  onProgress: ArchiveOptions['onProgress'],
  phase: DownloadProgress['phase'],
  filesTotal: number,
  bytesTotal: number,
): (file: string, done: number, finished?: boolean) => void {
  const perFile = new Map<string, number>();
  let bytesDone = 0;
  let filesDone = 0;
  return (file, done, finished) => {
    if (!onProgress) return;
    bytesDone += done - (perFile.get(file) ?? 0);
    perFile.set(file, done);
    if (finished) filesDone++;
    onProgress({ phase, filesDone, filesTotal, bytesDone, bytesTotal, current: file });
  };
}

/** Resolved options for callers that download without opening an archive (the lockfile path). */
export function resolveDownloadOptions(
  options: ArchiveOptions,
): Pick<Resolved, 'http' | 'cache' | 'concurrency' | 'options'> {
  return {
    http: normalizeHttpOptions(options),
    cache: new DownloadCache(options.cacheDir ?? defaultCacheDir(options.env), options.remote),
    concurrency: options.concurrency ?? 8,
    options,
  };
}
