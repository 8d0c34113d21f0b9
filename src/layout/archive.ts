import { createReadStream, rmSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, digestStream, sha256, verifyStream } from '../digest/index.ts';
import { LayoutError } from '../errors.ts';
import { bufferContent, lazyContent, normalizePath, TreeBuilder } from '../fstree/index.ts';
import {
  type Artifact,
  canonicalBytes,
  type Descriptor,
  detectCompression,
  type Image,
  imageFromParts,
  indexFromParts,
  indexJson,
  isImageManifestType,
  isIndexType,
  layerFromOpener,
  layerMediaType,
  MediaType,
  manifestJson,
  type Platform,
  parseConfig,
  parseIndex,
  selectImage,
  sniffMediaType,
  uncompressedLayer,
} from '../oci/index.ts';
import { readTar, tarFromTree } from '../tar/index.ts';
import { streamToTemp } from './atomic.ts';
import { checkLayoutVersion, REF_NAME, validateTag } from './layout.ts';

/**
 * Single-file image archives.
 *
 * `writeArchive` writes one tar that is at once an OCI image layout (`oci-layout`, `index.json`, `blobs/…`: what
 * `skopeo copy oci-archive:` reads) and a docker-archive (`manifest.json` with Config/RepoTags/Layers pointing at the
 * same blobs: what `docker load`, `podman load` and `skopeo copy docker-archive:` read) — the format `docker save`
 * writes since Docker 25. Deterministic: fixed owners and mtimes, sorted members.
 *
 * `readArchive` reads any of: that format, a plain oci-archive, a docker-archive from `docker save` (old
 * `<id>/layer.tar` form included), each optionally gzip/zstd compressed. Members are indexed once and then read by
 * offset, so no layer is held in memory.
 */

export interface WriteArchiveOptions {
  /** Tag for index.json's ref name (e.g. `latest`). */
  readonly tag?: string;
  /** Docker `RepoTags` entry (e.g. `hello:latest`); default `pare/image:<tag>` when a tag is given. */
  readonly repoTag?: string;
  /** For an index: which image goes into manifest.json (docker-archive holds single-platform images). */
  readonly platform?: Platform;
  /** mtime for every member (SOURCE_DATE_EPOCH). */
  readonly epoch?: number;
}

function blobName(d: Digest): string {
  return `/blobs/${d.replace(':', '/')}`;
}

/** Writes `artifact` to `file` atomically as an OCI layout + docker-archive tar. */
export async function writeArchive(
  file: string,
  artifact: Artifact,
  options: WriteArchiveOptions = {},
): Promise<Descriptor> {
  if (options.tag !== undefined) validateTag(options.tag);
  const mtime = options.epoch ?? 0;
  const b = new TreeBuilder({ mtime });
  const meta = { mode: 0o644, uid: 0, gid: 0, mtime };
  const putBytes = (bytes: Uint8Array) => {
    const d = sha256(bytes);
    if (!b.has(blobName(d))) b.put(blobName(d), { ...meta, kind: 'file', content: bufferContent(bytes) });
    return d;
  };
  const putImage = async (img: Image): Promise<void> => {
    const m = await img.manifest();
    for (const [i, l] of (await img.layers()).entries()) {
      const d = m.layers[i]!;
      if (!b.has(blobName(d.digest)))
        b.put(blobName(d.digest), {
          ...meta,
          kind: 'file',
          content: lazyContent(d.size, () => verifyStream(l.compressed(), d.digest, d.size)),
        });
    }
    putBytes(await img.rawConfig());
    putBytes(await img.rawManifest());
  };
  let top: Descriptor;
  let dockerImage: Image;
  if (artifact.kind === 'image') {
    await putImage(artifact.image);
    const raw = await artifact.image.rawManifest();
    top = { mediaType: await artifact.image.mediaType(), digest: sha256(raw), size: raw.length };
    dockerImage = artifact.image;
  } else {
    const walk = async (idx: typeof artifact.index): Promise<void> => {
      for (const d of (await idx.manifest()).manifests) {
        if (isImageManifestType(d.mediaType)) await putImage(await idx.image(d.digest));
        else if (isIndexType(d.mediaType)) await walk(await idx.imageIndex(d.digest));
      }
      putBytes(await idx.rawManifest());
    };
    await walk(artifact.index);
    const raw = await artifact.index.rawManifest();
    top = { mediaType: await artifact.index.mediaType(), digest: sha256(raw), size: raw.length };
    dockerImage = await selectImage(artifact, options.platform);
  }
  const refAnn = options.tag !== undefined ? { [REF_NAME]: options.tag } : undefined;
  const repoTag = options.repoTag ?? (options.tag !== undefined ? `pare/image:${options.tag}` : undefined);
  const index = canonicalBytes(
    indexJson({
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: [
        {
          ...top,
          annotations: refAnn && repoTag ? { 'io.containerd.image.name': repoTag, ...refAnn } : refAnn,
        },
      ],
    }),
  );
  const dm = await dockerImage.manifest();
  const dockerManifest = [
    {
      Config: blobName(dm.config.digest).slice(1),
      RepoTags: repoTag ? [repoTag] : [],
      Layers: dm.layers.map((l) => blobName(l.digest).slice(1)),
    },
  ];
  b.put('/oci-layout', { ...meta, kind: 'file', content: bufferContent('{"imageLayoutVersion":"1.0.0"}') });
  b.put('/index.json', { ...meta, kind: 'file', content: bufferContent(index) });
  b.put('/manifest.json', { ...meta, kind: 'file', content: bufferContent(JSON.stringify(dockerManifest)) });
  const tree = b.build();
  const tmp = await streamToTemp(file, tarFromTree(tree));
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return top;
}

interface Member {
  readonly type: string;
  readonly dataOffset: number;
  readonly size: number;
  readonly linkname: string;
}

/** An indexed archive file: members by path, read by offset. */
class ArchiveFile {
  readonly path: string;
  readonly members: Map<string, Member>;
  constructor(path: string, members: Map<string, Member>) {
    this.path = path;
    this.members = members;
  }
  resolve(name: string, hops = 0): Member {
    const p = normalizePath(name);
    const m = this.members.get(p);
    if (!m)
      throw new LayoutError(
        'LAYOUT_ARCHIVE_INVALID',
        `cannot read ${JSON.stringify(name)} from archive ${JSON.stringify(this.path)}: no such member`,
        { path: this.path },
      );
    if ((m.type === 'symlink' || m.type === 'hardlink') && hops < 8) {
      // docker save links a repeated layer as `../<id>/layer.tar`: resolve ".." lexically, never above the archive root.
      const base = m.type === 'symlink' && !m.linkname.startsWith('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      const parts: string[] = [];
      for (const c of `${base}/${m.linkname}`.split('/')) {
        if (c === '' || c === '.') continue;
        if (c !== '..') parts.push(c);
        else if (parts.pop() === undefined) {
          throw new LayoutError(
            'LAYOUT_ARCHIVE_INVALID',
            `cannot read ${JSON.stringify(name)} from archive ${JSON.stringify(this.path)}: its link ${JSON.stringify(m.linkname)} points outside the archive`,
            { path: this.path },
          );
        }
      }
      return this.resolve(parts.join('/'), hops + 1);
    }
    if (m.type !== 'file')
      throw new LayoutError(
        'LAYOUT_ARCHIVE_INVALID',
        `cannot read ${JSON.stringify(name)} from archive ${JSON.stringify(this.path)}: not a file`,
        { path: this.path },
      );
    return m;
  }
  has(name: string): boolean {
    return this.members.has(normalizePath(name));
  }
  open(name: string): AsyncIterable<Uint8Array> {
    const m = this.resolve(name);
    if (m.size === 0) return (async function* () {})();
    return createReadStream(this.path, {
      start: m.dataOffset,
      end: m.dataOffset + m.size - 1,
      highWaterMark: 1 << 20,
    }) as AsyncIterable<Uint8Array>;
  }
  async bytes(name: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const c of this.open(name)) parts.push(c);
    return Buffer.concat(parts);
  }
  async head(name: string, n: number): Promise<Uint8Array> {
    const m = this.resolve(name);
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(n, m.size));
      await fh.read(buf, 0, buf.length, m.dataOffset);
      return buf;
    } finally {
      await fh.close();
    }
  }
}

async function indexArchive(path: string): Promise<ArchiveFile> {
  const members = new Map<string, Member>();
  for await (const m of readTar(
    createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>,
  )) {
    if (m.header.path === '' || m.header.path === '.') continue;
    members.set(normalizePath(m.header.path), {
      type: m.header.type,
      dataOffset: m.dataOffset,
      size: m.header.size,
      linkname: m.header.linkname,
    });
  }
  return new ArchiveFile(path, members);
}

/** Opens and indexes an archive file (a compressed one is decompressed once to a private temp file). */
async function openArchiveFile(file: string): Promise<ArchiveFile> {
  const fh = await open(file, 'r').catch((e) => {
    throw new LayoutError(
      'LAYOUT_NOT_FOUND',
      `cannot open archive ${JSON.stringify(file)}: ${(e as Error).message}`,
      { cause: e, path: file },
    );
  });
  const head = Buffer.alloc(4);
  await fh.read(head, 0, 4, 0);
  await fh.close();
  let path = file;
  if (detectCompression(head) !== 'none') {
    // A compressed archive cannot be read by offset: decompress it once to a private temp file.
    const spoolPath = await streamToTemp(
      join(tmpdir(), 'pare-archive'),
      uncompressedLayer(createReadStream(file) as AsyncIterable<Uint8Array>, {
        compression: detectCompression(head),
        what: `archive ${JSON.stringify(file)}`,
      }),
    );
    process.once('exit', () => {
      rmSync(spoolPath, { force: true });
    });
    path = spoolPath;
  }
  try {
    return await indexArchive(path);
  } catch (e) {
    throw new LayoutError(
      'LAYOUT_ARCHIVE_INVALID',
      `cannot read archive ${JSON.stringify(file)}: ${(e as Error).message}`,
      { cause: e, path: file },
    );
  }
}

const isOciArchive = (ar: ArchiveFile) => ar.has('oci-layout') && ar.has('index.json');

/**
 * Reads an image archive (see module comment). `ref` picks a tag (oci: ref name; docker: a RepoTag or its tag part)
 * or, for docker archives, `@N` the N-th image. Throws LAYOUT_ARCHIVE_INVALID / LAYOUT_REF_NOT_FOUND.
 */
export async function readArchive(file: string, ref?: string): Promise<Artifact> {
  const ar = await openArchiveFile(file);
  if (isOciArchive(ar)) return readOciArchive(ar, file, ref);
  if (ar.has('manifest.json')) return readDockerArchive(ar, file, ref);
  throw new LayoutError(
    'LAYOUT_ARCHIVE_INVALID',
    `cannot read archive ${JSON.stringify(file)}: it has neither index.json + oci-layout (OCI) nor manifest.json (docker save)`,
    { path: file },
  );
}

/**
 * Returns the tags of an archive, sorted, each once: `format` 'docker' lists the RepoTags of its manifest.json (as
 * `docker load` names the images; a file without one is LAYOUT_ARCHIVE_INVALID); 'any' lists what `readArchive`
 * would select by: the ref names of its index.json when it is an OCI archive, else its RepoTags.
 */
export async function archiveTags(file: string, format: 'any' | 'docker' = 'any'): Promise<string[]> {
  const ar = await openArchiveFile(file);
  const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (format === 'any' && isOciArchive(ar))
    return sorted(
      parseIndex(await ar.bytes('index.json'), `${file}:index.json`).manifests.flatMap((m) =>
        m.annotations?.[REF_NAME] ? [m.annotations[REF_NAME]] : [],
      ),
    );
  if (!ar.has('manifest.json'))
    throw new LayoutError(
      'LAYOUT_ARCHIVE_INVALID',
      `cannot list the tags of archive ${JSON.stringify(file)}: it has no manifest.json (docker save)${format === 'any' ? ' nor index.json + oci-layout (OCI)' : isOciArchive(ar) ? '; it is an OCI archive: use oci-archive:' : ''}`,
      { path: file },
    );
  return sorted((await dockerManifest(ar, file)).flatMap((e) => e.RepoTags ?? []));
}

async function readOciArchive(ar: ArchiveFile, file: string, ref: string | undefined): Promise<Artifact> {
  let version: unknown;
  try {
    version = (
      JSON.parse(new TextDecoder().decode(await ar.bytes('oci-layout'))) as { imageLayoutVersion?: unknown }
    ).imageLayoutVersion;
  } catch (e) {
    throw new LayoutError(
      'LAYOUT_ARCHIVE_INVALID',
      `cannot read oci-layout in archive ${JSON.stringify(file)}: ${(e as Error).message}`,
      { cause: e, path: file },
    );
  }
  checkLayoutVersion(version, file);
  const idx = parseIndex(await ar.bytes('index.json'), `${file}:index.json`);
  let d: Descriptor | undefined;
  if (ref === undefined || ref === '') {
    if (idx.manifests.length === 1) d = idx.manifests[0];
  } else if (/^sha(256|512):/.test(ref)) d = idx.manifests.find((m) => m.digest === ref);
  else d = idx.manifests.find((m) => m.annotations?.[REF_NAME] === ref);
  if (!d) {
    const tags = idx.manifests.map((m) => m.annotations?.[REF_NAME]).filter(Boolean);
    throw new LayoutError(
      'LAYOUT_REF_NOT_FOUND',
      `cannot find ${JSON.stringify(ref ?? '')} in archive ${JSON.stringify(file)}; it has ${idx.manifests.length} manifest(s)${tags.length ? ` tagged ${tags.join(', ')}` : ''}`,
      { path: file },
    );
  }
  const blob = (x: Digest) => `blobs/${x.replace(':', '/')}`;
  const readBlob = async (x: Digest, size?: number) => {
    if (size !== undefined && ar.resolve(blob(x)).size !== size)
      throw new LayoutError(
        'LAYOUT_ARCHIVE_INVALID',
        `cannot read blob ${x} from ${JSON.stringify(file)}: it has ${ar.resolve(blob(x)).size} bytes, its descriptor says ${size}`,
        { path: file },
      );
    const bytes = await ar.bytes(blob(x));
    if (sha256(bytes) !== x)
      throw new LayoutError(
        'LAYOUT_ARCHIVE_INVALID',
        `cannot read blob ${x} from ${JSON.stringify(file)}: content hashes to ${sha256(bytes)}`,
        { path: file },
      );
    return bytes;
  };
  const image = (m: Descriptor): Image =>
    imageFromParts({
      where: `${m.digest} in ${JSON.stringify(file)}`,
      rawManifest: () => readBlob(m.digest, m.size),
      rawConfig: (c) => readBlob(c.digest, c.size),
      layer: async (l, _i, diffId) =>
        layerFromOpener({
          open: () =>
            verifyStream(ar.open(blob(l.digest)), l.digest, l.size, `layer in ${JSON.stringify(file)}`),
          digest: l.digest,
          size: l.size,
          mediaType: l.mediaType,
          diffId,
          what: `layer ${l.digest} of ${JSON.stringify(file)}`,
        }),
    });
  const index = (m: Descriptor): ReturnType<typeof indexFromParts> =>
    indexFromParts({
      where: m.digest,
      rawManifest: () => readBlob(m.digest, m.size),
      image: async (c) => image(c),
      index: async (c) => index(c),
    });
  if (
    isIndexType(d.mediaType) ||
    (d.mediaType === undefined && sniffMediaType(await readBlob(d.digest)) === MediaType.OCI_INDEX)
  )
    return { kind: 'index', index: index(d) };
  return { kind: 'image', image: image(d) };
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** Returns the entries of a docker archive's manifest.json; throws LAYOUT_ARCHIVE_INVALID when it is not one. */
async function dockerManifest(ar: ArchiveFile, file: string): Promise<DockerManifestEntry[]> {
  try {
    const entries = JSON.parse(
      new TextDecoder().decode(await ar.bytes('manifest.json')),
    ) as DockerManifestEntry[];
    if (
      !Array.isArray(entries) ||
      entries.some(
        (e) =>
          typeof e.Config !== 'string' ||
          !Array.isArray(e.Layers) ||
          !(
            e.RepoTags == null ||
            (Array.isArray(e.RepoTags) && e.RepoTags.every((t) => typeof t === 'string'))
          ),
      )
    )
      throw new Error('want [{Config, RepoTags, Layers}]');
    return entries;
  } catch (e) {
    throw new LayoutError(
      'LAYOUT_ARCHIVE_INVALID',
      `cannot read manifest.json in ${JSON.stringify(file)}: ${(e as Error).message}`,
      { cause: e, path: file },
    );
  }
}

async function readDockerArchive(ar: ArchiveFile, file: string, ref: string | undefined): Promise<Artifact> {
  const entries = await dockerManifest(ar, file);
  let entry: DockerManifestEntry | undefined;
  if (ref === undefined || ref === '') {
    if (entries.length === 1) entry = entries[0];
  } else if (/^@\d+$/.test(ref)) entry = entries[Number(ref.slice(1))];
  // Docker stores fully qualified names; accept the name as given, without its registry, or just the tag.
  else
    entry = entries.find((e) =>
      (e.RepoTags ?? []).some((t) => t === ref || t.endsWith(`/${ref}`) || t.endsWith(`:${ref}`)),
    );
  if (!entry) {
    const tags = entries.flatMap((e) => e.RepoTags ?? []);
    throw new LayoutError(
      'LAYOUT_REF_NOT_FOUND',
      `cannot choose an image in docker archive ${JSON.stringify(file)}: ${entries.length} image(s)${tags.length ? ` tagged ${tags.join(', ')}` : ''}; name one (or @N)`,
      { path: file },
    );
  }
  const e = entry;
  const rawConfig = await ar.bytes(e.Config);
  // docker save names the config by its digest (`<hex>.json`, or `blobs/sha256/<hex>` since Docker 25): the name is
  // the only thing that pins the config, so it must match.
  const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(e.Config);
  if (named && sha256(rawConfig) !== `sha256:${named[1]}`)
    throw new LayoutError(
      'LAYOUT_ARCHIVE_INVALID',
      `cannot read config ${JSON.stringify(e.Config)} of docker archive ${JSON.stringify(file)}: it hashes to ${sha256(rawConfig)}, not the digest its name says`,
      { path: file },
    );
  const cfg = parseConfig(rawConfig, `${file}:${e.Config}`);
  if (cfg.rootfs.diff_ids.length !== e.Layers.length) {
    throw new LayoutError(
      'LAYOUT_ARCHIVE_INVALID',
      `cannot read docker archive ${JSON.stringify(file)}: ${e.Layers.length} layers but the config lists ${cfg.rootfs.diff_ids.length} diff_ids`,
      { path: file },
    );
  }
  const layerDescs: Descriptor[] = [];
  for (const [i, name] of e.Layers.entries()) {
    const c = detectCompression(await ar.head(name, 4));
    const size = ar.resolve(name).size;
    // An uncompressed layer's digest is its diffID; a compressed one must be hashed once to describe it.
    let digest: Digest;
    if (c === 'none') digest = cfg.rootfs.diff_ids[i]!;
    else digest = (await digestStream(ar.open(name))).digest;
    layerDescs.push({ mediaType: layerMediaType(c), digest, size });
  }
  const rawManifest = canonicalBytes(
    manifestJson({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(rawConfig), size: rawConfig.length },
      layers: layerDescs,
    }),
  );
  const image = imageFromParts({
    where: file,
    rawManifest: async () => rawManifest,
    rawConfig: async () => rawConfig,
    layer: async (l, i, diffId) =>
      layerFromOpener({
        // A plain layer's digest is its config diff_id: this check is the diff_id check.
        open: () =>
          verifyStream(
            ar.open(e.Layers[i]!),
            l.digest,
            l.size,
            `layer ${JSON.stringify(e.Layers[i])} of ${JSON.stringify(file)} against the config's rootfs.diff_ids`,
          ),
        digest: l.digest,
        size: l.size,
        mediaType: l.mediaType,
        diffId,
        what: `layer ${JSON.stringify(e.Layers[i])} of ${JSON.stringify(file)}`,
      }),
  });
  return { kind: 'image', image };
}
