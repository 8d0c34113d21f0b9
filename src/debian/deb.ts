import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { DebianError, isPareError, TarError } from '../errors.ts';
import { Tree } from '../fstree/index.ts';
import { ContentSpool } from '../oci/index.ts';
import { readTar, tarToTree } from '../tar/index.ts';
import { type ArMember, readAr } from './ar.ts';
import { type Paragraph, parseControl } from './control.ts';
import { xzDecompress } from './xz.ts';

/**
 * .deb reader (deb(5)): an ar archive whose first member is `debian-binary` ("2.x\n"), then `control.tar[.gz|.xz|.zst]`
 * (the control paragraph, md5sums, conffiles and maintainer scripts, which are kept as data and never run), then
 * `data.tar[.gz|.xz|.zst|.lzma]` (the files). Members named `_…` are allowed between them, as dpkg allows. The data
 * tarball is streamed straight into an FsTree (src/tar refuses `..`, absolute names, links out of the root and writes
 * through symlinked directories); nothing is extracted to disk.
 *
 * gzip and zstd are streamed through node:zlib, xz and lzma through the system `xz` (src/debian/xz.ts). The bodies
 * of data.tar's files go to a ContentSpool (src/oci/spool.ts, shared by every .deb the process reads unless
 * `options.spool` gives another): small files in memory while its budget lasts, the rest in its temp file, so an
 * honest data.tar of any size is read in bounded memory. Decompression is bounded as it runs (DebLimits): a member
 * may not decompress to more than `dataBytes`, nor to more than `ratio` times the compressed bytes read so far (plus
 * `ratioSlack`), so a bomb is refused after at most ratioSlack + ratio × its size, never after it has filled the
 * disk. Every message names the package (and version and architecture when known) and the member, never the cache
 * file it was read from.
 */

export type DebCompression = 'none' | 'gzip' | 'xz' | 'zstd' | 'lzma';

/** A .deb read into memory: its control data and its files. */
export interface DebPackage {
  /** The `control` paragraph (Package, Version, Architecture, Depends, …). */
  readonly control: Paragraph;
  /** Every file of control.tar by name (`control`, `md5sums`, `conffiles`, `postinst`, `triggers`, …). */
  readonly controlFiles: ReadonlyMap<string, Uint8Array>;
  /** md5sums by canonical path (`/usr/bin/python3.11` → hex), as shipped. */
  readonly md5sums: ReadonlyMap<string, string>;
  /** Conffiles (absolute paths) as listed in control.tar's `conffiles`. */
  readonly conffiles: readonly string[];
  /** The files of data.tar, modes/owners/links kept as shipped. */
  readonly tree: Tree;
  readonly compression: { readonly control: DebCompression; readonly data: DebCompression };
}

export interface ReadDebOptions {
  /** Name of the .deb for messages (a file name or `package_version_arch`). */
  readonly source?: string;
  /** What the Packages index promised; a .deb whose control paragraph disagrees is refused. */
  readonly expect?: { readonly name?: string; readonly version?: string; readonly architecture?: string };
  /** Stop after control.tar: the result's tree is empty (for reading a package's relations without its files). */
  readonly controlOnly?: boolean;
  /** Decompression limits; each field defaults to the DEB_LIMITS one. */
  readonly limits?: Partial<DebLimits>;
  /** Where the bodies of data.tar's files go (default: one spool shared by every .deb this process reads). */
  readonly spool?: ContentSpool;
}

let sharedSpool: ContentSpool | undefined;
/** The spool of file bodies shared by every .deb read without `options.spool`: one temp file per process, at most. */
function debSpool(): ContentSpool {
  sharedSpool ??= new ContentSpool();
  return sharedSpool;
}

/** Bounds on what a .deb may decompress to. */
export interface DebLimits {
  /** Most bytes control.tar may decompress to. */
  readonly controlBytes: number;
  /** Most bytes data.tar may decompress to. */
  readonly dataBytes: number;
  /** Most decompressed bytes per compressed byte read, per codec, counted as the member streams (after ratioSlack). */
  readonly ratio: Readonly<Record<Exclude<DebCompression, 'none'>, number>>;
  /** Decompressed bytes allowed before the ratio applies (small members of zeros compress very well). */
  readonly ratioSlack: number;
}

/** control.tar holds a few KiB of text; 64 MiB (decompressed) bounds a hostile one. */
export const MAX_CONTROL_TAR = 64 * 1024 * 1024;
/**
 * Largest decompressed data.tar accepted (its file bodies are spooled, so this bounds disk, not memory). The largest
 * Debian packages unpack to a few GiB (game and TeX data); an image made from such packages needs the limit raised
 * (limits.dataBytes).
 */
export const MAX_DATA_TAR = 4 * 1024 ** 3;
/**
 * Most decompressed bytes per compressed byte, past DEB_LIMITS.ratioSlack, per codec. Code and text compress 3–10×;
 * the highest data.tar ratio among the 1681 bookworm .debs of one apt cache was 178× (libjs-moment-timezone, xz:
 * 213 MiB from 1.2 MB of near-identical JSON). Zeros reach ~1030× with gzip (its ceiling), ~6900× with xz and ~32000×
 * with zstd, so a bomb is refused after ratioSlack + ratio × the bytes the decoder took in: ~20 MiB of gzip output,
 * ~100 MiB of xz.
 */
export const MAX_DEB_RATIO: DebLimits['ratio'] = { gzip: 200, xz: 500, lzma: 500, zstd: 500 };

/** Defaults of DebLimits. */
export const DEB_LIMITS: DebLimits = {
  controlBytes: MAX_CONTROL_TAR,
  dataBytes: MAX_DATA_TAR,
  ratio: MAX_DEB_RATIO,
  ratioSlack: 16 * 1024 * 1024,
};

const CONTROL_NAMES: Record<string, DebCompression> = {
  'control.tar': 'none',
  'control.tar.gz': 'gzip',
  'control.tar.xz': 'xz',
  'control.tar.zst': 'zstd',
};
const DATA_NAMES: Record<string, DebCompression> = {
  'data.tar': 'none',
  'data.tar.gz': 'gzip',
  'data.tar.xz': 'xz',
  'data.tar.zst': 'zstd',
  'data.tar.lzma': 'lzma',
};

/**
 * Reads a .deb from a byte stream. Throws DebianError: DEBIAN_DEB_INVALID (not a .deb, wrong format version, missing,
 * misordered or unknown members, bad control data, disagreement with `expect`), DEBIAN_DEB_UNSAFE (a data.tar member
 * that would escape the root, naming the package and member), DEBIAN_DEB_LIMIT (over a named size limit).
 */
export async function readDeb(
  input: AsyncIterable<Uint8Array>,
  options: ReadDebOptions = {},
): Promise<DebPackage> {
  const source = options.source ?? debLabel(options.expect) ?? '.deb';
  const limits: DebLimits = { ...DEB_LIMITS, ...options.limits };
  const bad = (why: string, cause?: unknown) =>
    new DebianError('DEBIAN_DEB_INVALID', `cannot read ${source}: ${why}`, {
      cause,
      path: source,
      ...(options.expect?.name ? { package: options.expect.name } : {}),
    });
  let stage: 'binary' | 'control' | 'data' | 'done' = 'binary';
  let control:
    | { paragraph: Paragraph; files: Map<string, Uint8Array>; compression: DebCompression }
    | undefined;
  let data: { tree: Tree; compression: DebCompression } | undefined;
  try {
    for await (const m of readAr(input, source)) {
      if (stage === 'binary') {
        if (m.name !== 'debian-binary')
          throw bad(`first member is ${JSON.stringify(m.name)}, want "debian-binary"`);
        const text = new TextDecoder().decode(await m.bytes(64));
        // dpkg accepts any 2.x format and ignores what follows the first line.
        if (!/^2\.[0-9]+\n/.test(text))
          throw bad(`unsupported format version ${JSON.stringify(text.split('\n')[0])}`);
        stage = 'control';
        continue;
      }
      if (m.name.startsWith('_')) continue;
      if (stage === 'control') {
        const compression = CONTROL_NAMES[m.name];
        if (compression === undefined) throw bad(`want a control.tar member, got ${JSON.stringify(m.name)}`);
        control = await readControlTar(m, compression, source, bad, limits);
        stage = 'data';
        if (options.controlOnly) break;
        continue;
      }
      if (stage === 'data') {
        const compression = DATA_NAMES[m.name];
        if (compression === undefined) throw bad(`want a data.tar member, got ${JSON.stringify(m.name)}`);
        const pkgName = control?.paragraph.get('Package') ?? options.expect?.name ?? source;
        data = {
          tree: await readDataTar(m, compression, source, pkgName, limits, options.spool ?? debSpool()),
          compression,
        };
        stage = 'done';
        continue;
      }
      throw bad(`unexpected member ${JSON.stringify(m.name)} after data.tar`);
    }
  } catch (e) {
    if (isPareError(e) && e instanceof DebianError) throw e;
    if (e instanceof TarError) throw bad(e.message, e);
    throw bad((e as Error).message, e);
  }
  if (!control) throw bad('archive ends before control.tar');
  if (options.controlOnly) data = { tree: Tree.empty(), compression: 'none' };
  if (!data) throw bad('archive ends before data.tar');
  const p = control.paragraph;
  const exp = options.expect ?? {};
  for (const [field, want] of [
    ['Package', exp.name],
    ['Version', exp.version],
    ['Architecture', exp.architecture],
  ] as const) {
    if (want !== undefined && p.get(field) !== want) {
      throw bad(
        `its control file says ${field} ${JSON.stringify(p.get(field))}, but the index promised ${JSON.stringify(want)}`,
      );
    }
  }
  const md5 = control.files.get('md5sums');
  const conf = control.files.get('conffiles');
  return {
    control: p,
    controlFiles: control.files,
    md5sums: md5 ? parseMd5sums(new TextDecoder().decode(md5), source) : new Map(),
    conffiles: conf ? parseConffiles(new TextDecoder().decode(conf)) : [],
    tree: data.tree,
    compression: { control: control.compression, data: data.compression },
  };
}

/** Returns `package NAME_VERSION_ARCH` (what is known of it) for messages, or undefined without a name. */
function debLabel(expect: ReadDebOptions['expect']): string | undefined {
  if (!expect?.name) return undefined;
  return `package ${[expect.name, expect.version, expect.architecture].filter(Boolean).join('_')}`;
}

/**
 * Reads a .deb file from disk (see readDeb). Messages name the package from `options.expect` (the file is often a
 * cache blob whose name means nothing to the user), or the file when nothing is expected.
 */
export function readDebFile(path: string, options: ReadDebOptions = {}): Promise<DebPackage> {
  return readDeb(createReadStream(path, { highWaterMark: 1 << 20 }), {
    source: debLabel(options.expect) ?? path,
    ...options,
  });
}

/** xz members up to this size are decoded in-process: their output is at most ~7000× (56 MiB), checked after. */
const SMALL_XZ = 8 * 1024;

/**
 * Returns the decompressed bytes of an ar member as a stream, refusing (DEBIAN_DEB_LIMIT) more than `limit` bytes
 * of output or more than `ratio` times the compressed bytes read so far (after `ratioSlack`), and wrapping the
 * decompressor's own errors (DEBIAN_DEB_INVALID) with `what` (package and member).
 */
async function* decompress(
  m: ArMember,
  c: DebCompression,
  limit: number,
  limits: DebLimits,
  what: string,
): AsyncGenerator<Uint8Array> {
  // Compressed bytes the decoder has taken in: zlib counts its own (bytesWritten), so bytes still queued in front
  // of it do not raise the allowance.
  let fed = 0;
  let consumed = () => fed;
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    for await (const chunk of m.body()) {
      fed += chunk.length;
      yield chunk;
    }
  };
  let total = 0;
  const check = (n: number) => {
    total += n;
    if (total > limit)
      throw new DebianError(
        'DEBIAN_DEB_LIMIT',
        `cannot read ${what}: it decompresses to more than ${limit} bytes (the limit)`,
        { path: what },
      );
    if (c !== 'none' && total > limits.ratioSlack + limits.ratio[c] * consumed())
      throw new DebianError(
        'DEBIAN_DEB_LIMIT',
        `cannot read ${what}: ${consumed()} compressed bytes decompress to more than ${total} bytes, over the ${limits.ratio[c]}:1 ratio limit for ${c} (a decompression bomb?)`,
        { path: what },
      );
  };
  if (c === 'xz' || c === 'lzma') {
    const small = m.size <= SMALL_XZ;
    for await (const chunk of xzDecompress(counted(), what, { small, format: c })) {
      check(chunk.length);
      yield chunk;
    }
    return;
  }
  if (c === 'gzip' || c === 'zstd') {
    const z = c === 'gzip' ? createGunzip() : createZstdDecompress();
    consumed = () => z.bytesWritten;
    const done = pipeline(Readable.from(counted()), z).catch((e: unknown) => {
      z.destroy(e as Error);
    });
    try {
      for await (const chunk of z) {
        check((chunk as Uint8Array).length);
        yield chunk as Uint8Array;
      }
    } catch (e) {
      if (isPareError(e)) throw e;
      // zlib's and zstd's own words ("incorrect header check", "Frame requires too much memory for decoding").
      throw new DebianError(
        'DEBIAN_DEB_INVALID',
        `cannot decompress ${what}: ${c === 'gzip' ? 'gzip' : 'zstd'} says ${(e as Error).message}`,
        { cause: e, path: what },
      );
    } finally {
      z.destroy();
      await done;
    }
    return;
  }
  for await (const chunk of counted()) {
    check(chunk.length);
    yield chunk;
  }
}

async function readControlTar(
  m: ArMember,
  compression: DebCompression,
  source: string,
  bad: (why: string, cause?: unknown) => DebianError,
  limits: DebLimits,
): Promise<{ paragraph: Paragraph; files: Map<string, Uint8Array>; compression: DebCompression }> {
  const files = new Map<string, Uint8Array>();
  for await (const t of readTar(
    decompress(m, compression, limits.controlBytes, limits, `${source} ${m.name}`),
  )) {
    const name = t.header.path.replace(/^(\.\/)+/, '').replace(/\/$/, '');
    if (name === '' || name === '.') continue;
    if (t.header.type === 'dir') throw bad(`control.tar has a directory ${JSON.stringify(t.header.path)}`);
    if (t.header.type !== 'file' || name.includes('/') || name === '..') {
      throw bad(`control.tar member ${JSON.stringify(t.header.path)} is not a plain top-level file`);
    }
    if (files.has(name)) throw bad(`control.tar has ${JSON.stringify(name)} twice`);
    files.set(name, await t.bytes());
  }
  const text = files.get('control');
  if (!text) throw bad('control.tar has no control file');
  let paragraphs: Paragraph[];
  try {
    paragraphs = parseControl(new TextDecoder('utf-8', { fatal: false }).decode(text), {
      source: `${source} control`,
    });
  } catch (e) {
    throw bad((e as Error).message, e);
  }
  if (paragraphs.length !== 1) throw bad(`control file has ${paragraphs.length} paragraphs, want 1`);
  const p = paragraphs[0]!;
  for (const f of ['Package', 'Version', 'Architecture']) {
    if (!p.get(f)) throw bad(`control file lacks the ${f} field`);
  }
  return { paragraph: p, files, compression };
}

async function readDataTar(
  m: ArMember,
  compression: DebCompression,
  source: string,
  pkg: string,
  limits: DebLimits,
  spool: ContentSpool,
): Promise<Tree> {
  try {
    return await tarToTree(decompress(m, compression, limits.dataBytes, limits, `${source} ${m.name}`), {
      source: `${source} ${m.name}`,
      content: (t) => spool.content(t.header.size, t.body()),
    });
  } catch (e) {
    if (e instanceof TarError && e.code === 'TAR_UNSAFE_PATH') {
      throw new DebianError(
        'DEBIAN_DEB_UNSAFE',
        `cannot unpack package ${JSON.stringify(pkg)} (${source}): member ${JSON.stringify(e.path)} is unsafe: ${e.message}`,
        { cause: e, package: pkg, ...(e.path ? { path: e.path } : {}) },
      );
    }
    throw e;
  }
}

/** Parses an md5sums file (`<32 hex>  <path>` per line; dpkg also accepts one space) into canonical path → md5. */
export function parseMd5sums(text: string, source = 'md5sums'): Map<string, string> {
  const out = new Map<string, string>();
  let n = 0;
  for (const line of text.split('\n')) {
    n++;
    if (line.trim() === '') continue;
    const m = /^([0-9a-fA-F]{32}) [ *]?(.+)$/.exec(line);
    if (!m)
      throw new DebianError(
        'DEBIAN_DEB_INVALID',
        `cannot parse ${source} line ${n}: ${JSON.stringify(line.slice(0, 100))}`,
        {
          path: source,
        },
      );
    const path = `/${m[2]!.replace(/^(\.?\/)+/, '')}`;
    out.set(path, m[1]!.toLowerCase());
  }
  return out;
}

/** Parses a conffiles list: one absolute path per line, optionally followed by a flag such as `remove-on-upgrade`. */
export function parseConffiles(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => l.replace(/ remove-on-upgrade$/, ''));
}
