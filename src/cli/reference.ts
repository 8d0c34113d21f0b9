import type { ArtifactStore } from '../attest/index.ts';
import { OciError, UsageError } from '../errors.ts';
import { formatLocalRef, localTags } from '../layout/index.ts';
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
import type { TransportReference } from '../registry/index.ts';
import { openArtifact, parseImageArgument, parseRegistryArgument } from '../transport/index.ts';
import type { LazyClient } from './registry-flags.ts';

/**
 * The one way every command turns an image argument into something it can read: `openReference(arg, client)`, on
 * top of transport/'s grammar and opener (`parseImageArgument`, `openArtifact`), which `base:` in pare.yaml uses too.
 * The registry and attest modules are loaded only when a registry reference or a signature store is met, so
 * `pare inspect oci:…` does not load the registry client.
 */

export { parseImageArgument, parseRegistryArgument as registryArg };

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
    artifact ??= openArtifact(reference, client.get);
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
