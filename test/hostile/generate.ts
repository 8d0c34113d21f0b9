import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { sha256 } from '../../src/digest/index.ts';
import { bufferContent, TreeBuilder } from '../../src/fstree/index.ts';
import { hostPlatform } from '../../src/oci/index.ts';
import { collect, tarFromTree } from '../../src/tar/index.ts';

/**
 * Hostile images, made by code (nothing stored): one small image written by hand — not by pare's writers, so any
 * field can lie — in each of the three forms pare reads (OCI layout, oci-archive, docker-archive), with its layer
 * as a plain, gzip or zstd tar, and one lie at a time:
 *
 *   diff-id        the config's rootfs.diff_ids names other content
 *   digest         the stored layer is tampered with, same size (gzip: the header mtime, so it still decompresses to
 *                  the same tar and only the digest can tell; plain/zstd: one byte of a file changed)
 *   size-smaller   the manifest's layer descriptor says one byte less than the blob has
 *   size-larger    … one byte more
 *   layout-version the oci-layout file says imageLayoutVersion "9.9.9"
 *   count          the config lists two diff_ids for one layer
 *   bomb           the layer holds a 4 MiB file of zeros: over the limits the tests set low (BOMB_ENV)
 */

export type Lie =
  | 'good'
  | 'diff-id'
  | 'digest'
  | 'size-smaller'
  | 'size-larger'
  | 'layout-version'
  | 'count'
  | 'bomb';
export type LayerCompression = 'none' | 'gzip' | 'zstd';
export type Form = 'oci' | 'oci-archive' | 'docker-archive';

/** Limits low enough that the 4 MiB bomb is refused, high enough for the good image (a few KiB). */
export const BOMB_ENV = {
  PARE_MAX_LAYER_BYTES: String(2 << 20),
  PARE_RATIO_AFTER: String(1 << 20),
  PARE_MAX_RATIO: '50',
} as const;

const MEDIA: Record<LayerCompression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

async function layerTar(files: Record<string, string | Uint8Array>): Promise<Uint8Array> {
  const b = new TreeBuilder({ mtime: 0 });
  for (const [p, c] of Object.entries(files))
    b.put(p, { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: bufferContent(c) });
  return collect(tarFromTree(b.build()));
}

function compress(tar: Uint8Array, c: LayerCompression): Uint8Array {
  if (c === 'gzip') return zlib.gzipSync(tar, { level: 6 });
  if (c === 'zstd') return zlib.zstdCompressSync(tar);
  return tar;
}

const FILES = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
  '/etc/os-release': 'ID=hostile\nVERSION_ID=1\n',
  '/hello.txt': 'hello, hostile world\n',
};

interface Blob {
  readonly digest: string;
  readonly bytes: Uint8Array;
}
const blob = (bytes: Uint8Array | string): Blob => {
  const b = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  return { digest: sha256(b), bytes: b };
};

/** The documents and blobs of one (lying) image. */
export interface Parts {
  readonly layoutVersion: string;
  readonly manifest: Blob;
  readonly config: Blob;
  /** Stored layer bytes under the digest the manifest names. */
  readonly layer: { readonly digest: string; readonly bytes: Uint8Array };
  readonly manifestSize: number;
}

/** Returns the documents and blobs of the image with `lie` (the registry suite serves them over HTTP). */
export async function parts(c: LayerCompression, lie: Lie): Promise<Parts> {
  const tar = await layerTar(lie === 'bomb' ? { ...FILES, '/zero': new Uint8Array(4 << 20) } : FILES);
  const stored = compress(tar, c);
  const layerDigest = sha256(stored);
  let storedBytes = stored;
  if (lie === 'digest') {
    if (c === 'gzip') {
      storedBytes = Uint8Array.from(stored);
      storedBytes[4] = (storedBytes[4]! + 1) & 0xff; // header mtime: same content, other digest
    } else {
      // One letter of a file changed; the first such change whose compressed form keeps the size.
      let other: Uint8Array | undefined;
      for (const ch of 'jJxXyYzZqQ') {
        const t = compress(await layerTar({ ...FILES, '/hello.txt': `${ch}ello, hostile world\n` }), c);
        if (t.length === stored.length) {
          other = t;
          break;
        }
      }
      if (!other) throw new Error(`no same-size tampering found for a ${c} layer`);
      storedBytes = other;
    }
  }
  const p = hostPlatform();
  const diffIds =
    lie === 'diff-id'
      ? [sha256('other content')]
      : lie === 'count'
        ? [sha256(tar), sha256(tar)]
        : [sha256(tar)];
  const config = blob(
    JSON.stringify({
      architecture: p.architecture,
      os: p.os,
      config: { Cmd: ['/hello.txt'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const size = stored.length + (lie === 'size-smaller' ? -1 : lie === 'size-larger' ? 1 : 0);
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: config.digest,
        size: config.bytes.length,
      },
      layers: [{ mediaType: MEDIA[c], digest: layerDigest, size }],
    }),
  );
  return {
    layoutVersion: lie === 'layout-version' ? '9.9.9' : '1.0.0',
    manifest,
    config,
    layer: { digest: layerDigest, bytes: storedBytes },
    manifestSize: manifest.bytes.length,
  };
}

/** The files of an OCI layout holding `p`, tagged v1: path → bytes. */
function layoutFiles(p: Parts): Map<string, Uint8Array | string> {
  const files = new Map<string, Uint8Array | string>();
  const put = (d: string, b: Uint8Array) => files.set(`blobs/sha256/${d.slice(7)}`, b);
  put(p.layer.digest, p.layer.bytes);
  put(p.config.digest, p.config.bytes);
  put(p.manifest.digest, p.manifest.bytes);
  files.set('oci-layout', JSON.stringify({ imageLayoutVersion: p.layoutVersion }));
  files.set(
    'index.json',
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: p.manifest.digest,
          size: p.manifestSize,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  return files;
}

async function writeTar(file: string, files: Map<string, Uint8Array | string>): Promise<void> {
  const b = new TreeBuilder({ mtime: 0 });
  for (const [p, c] of files)
    b.put(`/${p}`, { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: bufferContent(c) });
  writeFileSync(file, await collect(tarFromTree(b.build())));
}

/** Writes the image with `lie` in `form` under `dir` and returns the reference pare takes for it. */
export async function writeHostile(dir: string, form: Form, c: LayerCompression, lie: Lie): Promise<string> {
  const p = await parts(c, lie);
  const name = join(dir, `${form}-${c}-${lie}`);
  if (form === 'oci') {
    for (const [f, b] of layoutFiles(p)) {
      mkdirSync(join(name, f, '..'), { recursive: true });
      writeFileSync(join(name, f), b);
    }
    return `oci:${name}:v1`;
  }
  if (form === 'oci-archive') {
    await writeTar(`${name}.tar`, layoutFiles(p));
    return `oci-archive:${name}.tar:v1`;
  }
  // docker-archive: manifest.json names config and layer by path; the config's diff_ids are the only link.
  const files = new Map<string, Uint8Array | string>();
  const layerPath = `${p.layer.digest.slice(7)}/layer.tar`;
  files.set(layerPath, p.layer.bytes);
  files.set(`${p.config.digest.slice(7)}.json`, p.config.bytes);
  files.set(
    'manifest.json',
    JSON.stringify([
      { Config: `${p.config.digest.slice(7)}.json`, RepoTags: ['hostile:v1'], Layers: [layerPath] },
    ]),
  );
  await writeTar(`${name}.tar`, files);
  return `docker-archive:${name}.tar`;
}

/** The file or directory a reference names (what error messages must name). */
export function inputPath(ref: string): string {
  return ref.replace(/^(oci|oci-archive|docker-archive):/, '').replace(/:v1$/, '');
}
