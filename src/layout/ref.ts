import { UsageError } from '../errors.ts';
import type { Artifact, Descriptor } from '../oci/index.ts';
import { archiveTags, readArchive, type WriteArchiveOptions, writeArchive } from './archive.ts';
import { OciLayout, REF_NAME } from './layout.ts';

/**
 * Local image references, in the transport syntax of containers-transports(5): `oci:DIR[:TAG]`,
 * `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`. This is the one grammar for `PATH[:TAG]`; the registry module
 * adds `docker://` and `HOST/REPO:TAG` on top of it (registry/reference.ts), and the CLI's `openReference` classifies
 * a bare path by what is on disk.
 */
export type LocalRef =
  | { readonly transport: 'oci'; readonly path: string; readonly tag?: string }
  | { readonly transport: 'oci-archive'; readonly path: string; readonly tag?: string }
  | { readonly transport: 'docker-archive'; readonly path: string; readonly tag?: string };

export type LocalTransport = LocalRef['transport'];

export const LOCAL_TRANSPORTS: readonly LocalTransport[] = ['oci', 'oci-archive', 'docker-archive'];

/**
 * Splits `PATH[:TAG]`: a tag never contains `/`, so the last `:` followed by no `/` starts it (paths may contain `:`
 * earlier), and `PATH:sha256:<hex>` names a digest.
 */
export function splitPathAndTag(rest: string): { path: string; tag?: string } {
  const i = rest.lastIndexOf(':');
  if (i < 0 || rest.slice(i + 1).includes('/')) return { path: rest };
  const j = rest.lastIndexOf(':', i - 1);
  if (j >= 0 && /^sha(256|512)$/.test(rest.slice(j + 1, i)))
    return { path: rest.slice(0, j), tag: rest.slice(j + 1) };
  return { path: rest.slice(0, i), tag: rest.slice(i + 1) };
}

/** Returns `{transport, path, tag?}` of a local transport; throws INPUT_INVALID for a missing path or empty tag. */
export function localRef(transport: LocalTransport, rest: string, input = `${transport}:${rest}`): LocalRef {
  const { path, tag } = splitPathAndTag(rest);
  if (path === '')
    throw new UsageError(
      'INPUT_INVALID',
      `cannot parse image reference ${JSON.stringify(input)}: no path after "${transport}:", as in ${transport}:./image${transport === 'oci' ? ':tag' : ''}`,
    );
  if (tag === '')
    throw new UsageError(
      'INPUT_INVALID',
      `cannot parse image reference ${JSON.stringify(input)}: empty tag after ":"`,
    );
  return tag === undefined ? { transport, path } : { transport, path, tag };
}

/** Returns the local reference `s` names when it starts with a local transport prefix, else undefined. */
export function parseLocalTransport(s: string): LocalRef | undefined {
  for (const t of LOCAL_TRANSPORTS) if (s.startsWith(`${t}:`)) return localRef(t, s.slice(t.length + 1), s);
  return undefined;
}

/** Returns the canonical string of a local reference (`oci:DIR:TAG`). */
export function formatLocalRef(r: LocalRef): string {
  return `${r.transport}:${r.path}${r.tag !== undefined ? `:${r.tag}` : ''}`;
}

/** Referrer and cosign entries pare and cosign add to a layout's index.json; never the image a user means. */
const SIGNATURE_TAG = /^sha(256|512)-[0-9a-f]+(\.(sig|att|sbom))?$/;

/**
 * Resolves `tag` (tag or digest) in a layout; without one, the only entry that is not a signature or referrer tag
 * (`sha256-<hex>[.sig|.att|.sbom]`), so a layout stays usable without a tag after it was signed.
 */
export async function resolveLayoutImage(layout: OciLayout, tag: string | undefined): Promise<Descriptor> {
  if (tag) return layout.resolve(tag);
  const idx = await layout.readIndexJson();
  const images = idx.manifests.filter((d) => !SIGNATURE_TAG.test(d.annotations?.[REF_NAME] ?? ''));
  if (images.length === 1) return images[0]!;
  return layout.resolve(undefined);
}

/** Opens a local image reference (lazy: blobs are read when asked). */
export async function readLocal(r: LocalRef): Promise<Artifact> {
  if (r.transport === 'oci') {
    const layout = await OciLayout.open(r.path);
    return layout.artifact(await resolveLayoutImage(layout, r.tag));
  }
  return readArchive(r.path, r.tag);
}

/** Returns the tags a local reference's layout or archive holds, sorted. */
export async function localTags(r: LocalRef): Promise<string[]> {
  if (r.transport === 'oci') return (await OciLayout.open(r.path)).tags();
  return archiveTags(r.path, r.transport === 'docker-archive' ? 'docker' : 'any');
}

/** Writes an artifact to a local reference (layout: blobs + tag; archive: a new file). */
export async function writeLocal(
  r: LocalRef,
  a: Artifact,
  options: Omit<WriteArchiveOptions, 'tag'> = {},
): Promise<Descriptor> {
  if (r.transport === 'oci')
    return (await OciLayout.create(r.path)).writeArtifact(a, { tag: r.tag ?? 'latest' });
  return writeArchive(r.path, a, { ...options, tag: r.tag ?? 'latest' });
}
