import { stat } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import type { Artifact, Descriptor } from '../oci/index.ts';
import { readArchive, type WriteArchiveOptions, writeArchive } from './archive.ts';
import { OciLayout } from './layout.ts';

/**
 * Local image references, in the transport syntax skopeo users know:
 * `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`, or a bare path (a directory with an
 * `oci-layout` file, or an archive file; `PATH:REF` picks a tag). `docker://` references belong to the registry module.
 */
export type LocalRef =
  | { readonly transport: 'oci'; readonly path: string; readonly ref?: string }
  | { readonly transport: 'oci-archive'; readonly path: string; readonly ref?: string }
  | { readonly transport: 'docker-archive'; readonly path: string; readonly ref?: string };

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const;

function splitRef(rest: string): { path: string; ref?: string } {
  // A tag never contains "/", so the last ":" followed by no "/" separates it (paths may contain ":" earlier).
  const i = rest.lastIndexOf(':');
  if (i > 0 && !rest.slice(i + 1).includes('/')) {
    const tail = rest.slice(i + 1);
    // `dir:sha256:<hex>` names a digest
    const j = rest.lastIndexOf(':', i - 1);
    if (j > 0 && /^sha(256|512)$/.test(rest.slice(j + 1, i)))
      return { path: rest.slice(0, j), ref: rest.slice(j + 1) };
    return { path: rest.slice(0, i), ref: tail };
  }
  return { path: rest };
}

/** True when `s` is a local reference (a local transport or a bare path), false for `docker://`. */
export function isLocalRef(s: string): boolean {
  return !s.startsWith('docker://');
}

/** Parses a local reference; a bare path is classified by what is on disk (a directory → oci, a file → archive). */
export async function parseLocalRef(s: string): Promise<LocalRef> {
  for (const t of TRANSPORTS) {
    if (s.startsWith(`${t}:`)) {
      const { path, ref } = splitRef(s.slice(t.length + 1));
      if (!path)
        throw new UsageError(
          'USAGE',
          `cannot parse image reference ${JSON.stringify(s)}: no path after "${t}:"`,
        );
      return ref === undefined ? { transport: t, path } : { transport: t, path, ref };
    }
  }
  const whole = await stat(s).catch(() => undefined);
  const { path, ref } = whole ? { path: s, ref: undefined } : splitRef(s);
  const st = whole ?? (await stat(path).catch(() => undefined));
  if (!st)
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot find image ${JSON.stringify(s)}: no such directory or file (use oci:DIR[:tag], oci-archive:FILE or docker://HOST/REPO:TAG)`,
    );
  const transport = st.isDirectory() ? 'oci' : 'oci-archive';
  return ref === undefined ? { transport, path } : { transport, path, ref };
}

/** Opens a local image reference. */
export async function readLocal(r: LocalRef): Promise<Artifact> {
  if (r.transport === 'oci') return (await OciLayout.open(r.path)).readArtifact(r.ref);
  return readArchive(r.path, r.ref);
}

/** Writes an artifact to a local reference (layout: blobs + tag; archive: a new file). */
export async function writeLocal(
  r: LocalRef,
  a: Artifact,
  options: Omit<WriteArchiveOptions, 'tag'> = {},
): Promise<Descriptor> {
  if (r.transport === 'oci')
    return (await OciLayout.create(r.path)).writeArtifact(a, { tag: r.ref ?? 'latest' });
  return writeArchive(r.path, a, { ...options, tag: r.ref ?? 'latest' });
}
