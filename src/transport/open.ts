import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isRegistryError, UsageError } from '../errors.ts';
import { type LocalRef, parseLocalTransport, readLocal, splitPathAndTag } from '../layout/index.ts';
import { type Artifact, type Descriptor, selectImage, verifyArtifact } from '../oci/index.ts';
import type { CopyOptions, ImageReference, RegistryClient, TransportReference } from '../registry/index.ts';

/**
 * The one grammar of image arguments and the one opener, shared by every command (cli/reference.ts), `base:` in
 * pare.yaml (build/base-image.ts) and `copy`. Forms (containers-transports(5) plus what docker and crane users type):
 * - `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, or the same without `docker://`;
 * - `oci:DIR[:TAG|@DIGEST]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`;
 * - a bare path: a directory is an OCI layout, a file an archive (`PATH:TAG` picks a tag). A path that exists wins
 *   over a registry reference of the same spelling (`localhost/app` as a directory is a directory).
 * The registry module is loaded only when a registry reference is met, so opening `oci:…` does not load its client.
 */

/** The registry module, loaded on first use. */
const registry = () => import('../registry/index.ts');

/** The forms, for messages. */
export const IMAGE_FORMS =
  'oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE or [docker://]HOST[:PORT]/REPO[:TAG]';

export interface ParseImageOptions {
  /** Relative paths are relative to this directory (pare.yaml's for `base:`); default: the current directory. */
  readonly dir?: string;
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

async function local(
  path: string,
  tag: string | undefined,
  dir: string | undefined,
): Promise<LocalRef | undefined> {
  const full = at(path, dir);
  const st = await stat(full).catch(() => undefined);
  if (!st) return undefined;
  const transport = st.isDirectory() ? 'oci' : 'oci-archive';
  return tag === undefined ? { transport, path: full } : { transport, path: full, tag };
}

/** `path` under `dir` when one is given and the path is relative; else as given (the CLI keeps what was typed). */
function at(path: string, dir: string | undefined): string {
  return dir === undefined || isAbsolute(path) ? path : resolve(dir, path);
}

/**
 * Returns the transport reference an image argument names (see the module comment). Throws INPUT_INVALID for a
 * malformed reference and INPUT_NOT_FOUND for a bare name that is neither a path nor a registry reference.
 */
export async function parseImageArgument(
  input: string,
  options: ParseImageOptions = {},
): Promise<TransportReference> {
  const dir = options.dir;
  const prefixed = parseLocalTransport(input);
  if (prefixed) return { ...prefixed, path: at(prefixed.path, dir) };
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(input))
    return asUsage(async () => (await registry()).parseTransportReference(input));
  const whole = await local(input, undefined, dir);
  if (whole) return whole;
  const { path, tag } = splitPathAndTag(input);
  if (tag !== undefined) {
    const withTag = await local(path, tag, dir);
    if (withTag) return withTag;
  }
  if (/^\.{0,2}\//.test(input))
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot open image ${JSON.stringify(input)}: no such file or directory${dir !== undefined ? ` (under ${JSON.stringify(dir)})` : ''} (write ${IMAGE_FORMS})`,
    );
  const { parseReference } = await registry();
  try {
    return { transport: 'docker', ref: parseReference(input) };
  } catch (e) {
    if (!isRegistryError(e, 'REGISTRY_REFERENCE')) throw e;
    const why = e.message.replace(/^cannot parse image reference "[^"]*": /, '');
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot open image ${JSON.stringify(input)}: no such file or directory, and not a registry reference (${why}); write ${IMAGE_FORMS}`,
      { cause: e },
    );
  }
}

/** Returns the registry reference an argument names (`docker://` optional); local forms are a usage error. */
export async function parseRegistryArgument(
  input: string,
  what = 'a registry repository',
): Promise<ImageReference> {
  const t = await asUsage(async () => (await registry()).parseTransportReference(input));
  if (t.transport !== 'docker')
    throw new UsageError(
      'USAGE',
      `cannot use ${JSON.stringify(input)} here: want ${what} (HOST[:PORT]/REPO[:TAG])`,
    );
  return t.ref;
}

/** Returns the canonical string of a reference (`HOST/REPO:TAG`, `oci:DIR:TAG`). */
export async function formatImageReference(r: TransportReference): Promise<string> {
  return (await registry()).formatTransportReference(r);
}

/**
 * Returns the artifact a transport reference names (lazy: blobs are read when a sink pulls). `client` is a function,
 * called only for a registry reference, so local references never make one (nor load the registry module).
 */
export async function openArtifact(
  reference: TransportReference,
  client: () => RegistryClient | Promise<RegistryClient>,
): Promise<Artifact> {
  if (reference.transport === 'docker') return (await registry()).pull(await client(), reference.ref);
  return readLocal(reference);
}

/**
 * Copies `src` to `dst` (as `skopeo copy`) and returns the descriptor written. An index is copied whole with `all`,
 * else narrowed to the image for `platform` (default: this host's). A local source is read whole once before anything
 * is written: diff_ids, sizes and limits are checked there, so a lying image never reaches the destination. Throws
 * REGISTRY_*, LAYOUT_*, OCI_PLATFORM_NOT_FOUND, DIGEST_MISMATCH.
 */
export async function copy(
  client: RegistryClient,
  src: TransportReference,
  dst: TransportReference,
  options: CopyOptions = {},
): Promise<Descriptor> {
  let artifact = await openArtifact(src, () => client);
  if (artifact.kind === 'index' && !options.all)
    artifact = { kind: 'image', image: await selectImage(artifact, options.platform) };
  if (src.transport !== 'docker') await verifyArtifact(artifact);
  return (await registry()).writeSink(client, dst, artifact, options);
}
