import { OciError } from '../errors.ts';
import { applyLayer, Tree } from '../fstree/index.ts';
import { collectEntries } from '../tar/index.ts';
import { LIMIT_ENV, type ReadLimits, readLimits } from './limits.ts';
import { type Artifact, formatPlatform, type Image, isImageManifestType, type Platform } from './model.ts';
import { ContentSpool } from './spool.ts';

/**
 * Returns the root filesystem of an image: its layers applied in order, whiteouts honoured, every layer checked
 * for path escapes (see tar/tree.ts). A layer is applied only after it was read to the end: its digest, size and
 * diff_id checked (layer-stream.ts), so nothing of a layer that fails its checks reaches the tree. The read limits
 * (limits.ts) bound each layer; file bytes go to a ContentSpool, so memory stays bounded however big the files are.
 */
export async function imageToTree(
  image: Image,
  options: {
    limits?: ReadLimits;
    spoolDir?: string;
    /** Where file bodies go (default: a ContentSpool in `spoolDir`). */
    spool?: ContentSpool;
    /** Filled with the digest of the layer that last wrote each path (lint evidence). */
    origins?: Map<string, string>;
  } = {},
): Promise<Tree> {
  const limits = options.limits ?? readLimits();
  const spool = options.spool ?? new ContentSpool(options.spoolDir ? { dir: options.spoolDir } : {});
  let tree = Tree.empty();
  for (const layer of await image.layers()) {
    const d = await layer.digest();
    const entries = await collectEntries(layer.uncompressed(), {
      base: tree,
      source: `layer ${d}`,
      content: (m) => spool.content(m.header.size, m.body()),
      maxEntries: limits.entries,
      maxPathLength: limits.pathLength,
      limitNames: { entries: LIMIT_ENV.entries, pathLength: LIMIT_ENV.pathLength },
    });
    tree = applyLayer(tree, entries);
    if (options.origins) for (const [p] of entries) options.origins.set(p, d);
  }
  return tree;
}

/** The platform of the machine pare runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  return {
    os: 'linux',
    architecture: arch[process.arch] ?? process.arch,
    ...(process.arch === 'arm64' ? { variant: 'v8' } : {}),
  };
}

export function platformMatches(want: Platform, got: Platform | undefined): boolean {
  if (!got) return false;
  if (want.os !== got.os || want.architecture !== got.architecture) return false;
  // arm64 images are often published without a variant; v8 is implied.
  const norm = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  return want.variant === undefined || norm(want) === norm(got);
}

/**
 * Returns the single image of an artifact: the image itself, or the index entry for `platform` (default: this host's).
 * Throws OCI_PLATFORM_NOT_FOUND listing the platforms the index has.
 */
export async function selectImage(a: Artifact, platform: Platform = hostPlatform()): Promise<Image> {
  if (a.kind === 'image') return a.image;
  const m = await a.index.manifest();
  const images = m.manifests.filter(
    (d) => isImageManifestType(d.mediaType) && d.platform?.architecture !== 'unknown',
  );
  const hit =
    images.find((d) => platformMatches(platform, d.platform)) ??
    (images.length === 1 && !images[0]!.platform ? images[0] : undefined);
  if (!hit) {
    const have = images.map((d) => (d.platform ? formatPlatform(d.platform) : '(no platform)')).join(', ');
    throw new OciError(
      'OCI_PLATFORM_NOT_FOUND',
      `cannot find an image for ${formatPlatform(platform)} in the index; it has: ${have || 'nothing'}; choose one with --platform`,
    );
  }
  return a.index.image(hit.digest);
}
