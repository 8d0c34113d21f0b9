import { stat } from 'node:fs/promises';
import type { ArtifactStore } from '../attest/index.ts';
import { isRegistryError, OciError, UsageError } from '../errors.ts';
import {
  formatLocalRef,
  type LocalRef,
  localTags,
  parseLocalTransport,
  readLocal,
  splitPathAndTag,
} from '../layout/index.ts';
import {
  type Artifact,
  type Descriptor,
  formatPlatform,
  type Image,
  type Platform,
  parsePlatform,
  platformMatches,
  selectImage,
} from '../oci/index.ts';
import type { ImageReference, TransportReference } from '../registry/index.ts';
import type { LazyClient } from './registry-flags.ts';

/**
 * The one way every command turns an image argument into something it can read: `openReference(arg, client)`.
 *
 * Forms (containers-transports(5) plus what docker and crane users type):
 * - `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, or the same without `docker://`;
 * - `oci:DIR[:TAG|@DIGEST]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`;
 * - a bare path: a directory is an OCI layout, a file an archive (`PATH:TAG` picks a tag). A path that exists wins
 *   over a registry reference of the same spelling (`localhost/app` as a directory is a directory).
 *
 * The registry and attest modules are loaded only when a registry reference or a signature store is met, so
 * `pare inspect oci:…` does not load the registry client.
 */

/** The registry module, loaded on first use. */
const registry = () => import('../registry/index.ts');

/** An image argument, parsed and opened lazily: nothing is read until a method asks. */
export interface OpenedReference {
  /** The argument as given. */
  readonly input: string;
  readonly reference: TransportReference;
  /** For messages: `HOST/REPO:TAG` or `oci:DIR:TAG`. */
  readonly name: string;
  /** The image or index the reference names. */
  artifact(): Promise<Artifact>;
  /** The descriptor of that manifest (what signatures and referrers refer to). */
  subject(): Promise<Descriptor>;
  /**
   * The one image to read: the image itself, or the index's image for `platform` (default: this host's), with a
   * note on stderr that the index was narrowed. With `platform` and a single image of another platform: an error.
   */
  image(platform?: Platform): Promise<Image>;
  /** The tags of the repository, layout or archive. */
  tags(): Promise<string[]>;
  /** Where signatures and referrers of this image are read and written; `verb` is for the refusal of archives. */
  store(verb: string): Promise<ArtifactStore>;
}

export interface OpenReferenceOptions {
  /** Where notes (an index narrowed to one platform) go; default stderr. */
  readonly note?: (line: string) => void;
}

/** Runs a parser and turns a bad registry reference into a UsageError (exit 2: nothing was done). */
async function asUsage<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isRegistryError(e, 'REGISTRY_REFERENCE'))
      throw new UsageError('INPUT_INVALID', e.message, { cause: e });
    throw e;
  }
}

const FORMS = 'oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE or [docker://]HOST[:PORT]/REPO[:TAG]';

async function local(path: string, tag: string | undefined): Promise<LocalRef | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return undefined;
  const transport = st.isDirectory() ? 'oci' : 'oci-archive';
  return tag === undefined ? { transport, path } : { transport, path, tag };
}

/**
 * Returns the transport reference an image argument names (see the module comment). Throws INPUT_INVALID for a
 * malformed reference and INPUT_NOT_FOUND for a bare name that is neither a path nor a registry reference.
 */
export async function parseImageArgument(input: string): Promise<TransportReference> {
  const prefixed = parseLocalTransport(input);
  if (prefixed) return prefixed;
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(input))
    return asUsage(async () => (await registry()).parseTransportReference(input));
  const whole = await local(input, undefined);
  if (whole) return whole;
  const { path, tag } = splitPathAndTag(input);
  if (tag !== undefined) {
    const withTag = await local(path, tag);
    if (withTag) return withTag;
  }
  if (/^\.{0,2}\//.test(input))
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot open image ${JSON.stringify(input)}: no such file or directory (write ${FORMS})`,
    );
  const { parseReference } = await registry();
  try {
    return { transport: 'docker', ref: parseReference(input) };
  } catch (e) {
    if (!isRegistryError(e, 'REGISTRY_REFERENCE')) throw e;
    const why = e.message.replace(/^cannot parse image reference "[^"]*": /, '');
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot open image ${JSON.stringify(input)}: no such file or directory, and not a registry reference (${why}); write ${FORMS}`,
      { cause: e },
    );
  }
}

/** Returns the registry reference an argument names (`docker://` optional); local forms are a usage error. */
export async function registryArg(input: string, what = 'a registry repository'): Promise<ImageReference> {
  const t = await asUsage(async () => (await registry()).parseTransportReference(input));
  if (t.transport !== 'docker')
    throw new UsageError(
      'USAGE',
      `cannot use ${JSON.stringify(input)} here: want ${what} (HOST[:PORT]/REPO[:TAG])`,
    );
  return t.ref;
}

/** Opens an image argument; `client` is used (and made) only for registry references. */
export async function openReference(
  input: string,
  client: LazyClient,
  options: OpenReferenceOptions = {},
): Promise<OpenedReference> {
  return openTransport(input, await parseImageArgument(input), client, options);
}

/** Opens an already parsed transport reference (see openReference). */
export async function openTransport(
  input: string,
  reference: TransportReference,
  client: LazyClient,
  options: OpenReferenceOptions = {},
): Promise<OpenedReference> {
  const name =
    reference.transport === 'docker'
      ? (await registry()).formatReference(reference.ref)
      : formatLocalRef(reference);
  const note = options.note ?? ((s: string) => process.stderr.write(`${s}\n`));
  let artifact: Promise<Artifact> | undefined;
  const open = () => {
    artifact ??=
      reference.transport === 'docker'
        ? (async () => (await registry()).pull(await client.get(), reference.ref))()
        : readLocal(reference);
    return artifact;
  };
  const opened: OpenedReference = {
    input,
    reference,
    name,
    artifact: open,
    async subject() {
      const a = await open();
      const top = a.kind === 'image' ? a.image : a.index;
      const [mediaType, digest, raw] = await Promise.all([top.mediaType(), top.digest(), top.rawManifest()]);
      return { mediaType, digest, size: raw.length };
    },
    async image(platform) {
      const a = await open();
      if (a.kind === 'image') {
        if (platform) {
          const c = await a.image.config();
          const got: Platform = {
            os: c.os,
            architecture: c.architecture,
            ...(c.variant ? { variant: c.variant } : {}),
          };
          if (!platformMatches(platform, got))
            throw new OciError(
              'OCI_PLATFORM_NOT_FOUND',
              `cannot find an image for ${formatPlatform(platform)} in ${JSON.stringify(name)}: it is a single ${formatPlatform(got)} image`,
            );
        }
        return a.image;
      }
      const image = await selectImage(a, platform);
      const count = (await a.index.manifest()).manifests.length;
      const c = await image.config();
      note(
        `pare: note: ${name} is an index of ${count} manifests; using ${formatPlatform(c)} (${await image.digest()})${platform ? '' : '; --platform picks another'}`,
      );
      return image;
    },
    async tags() {
      if (reference.transport === 'docker')
        return (await registry()).listTags(await client.get(), reference.ref);
      return localTags(reference);
    },
    async store(verb) {
      const { layoutStore, registryStore } = await import('../attest/index.ts');
      if (reference.transport === 'docker') return registryStore(await client.get(), reference.ref);
      if (reference.transport === 'oci') return layoutStore(reference.path);
      throw new UsageError(
        'USAGE',
        `cannot ${verb} ${JSON.stringify(input)}: an archive holds no signatures or referrers; copy it into a layout first (pare copy ${input} oci:DIR) and use oci:DIR`,
      );
    },
  };
  return opened;
}

/** Returns the platform of a `--platform` flag, or undefined; a bad value is a usage error. */
export function platformFlag(v: string | undefined): Platform | undefined {
  if (v === undefined) return undefined;
  try {
    return parsePlatform(v);
  } catch (e) {
    throw new UsageError('USAGE', (e as Error).message, { cause: e });
  }
}
