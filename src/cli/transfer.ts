import { type ArtifactStore, copyReferrers } from '../attest/index.ts';
import type { Digest } from '../digest/index.ts';
import { type Artifact, type ImageIndex, isIndexType, verifyArtifact } from '../oci/index.ts';
import { type TransportReference, writeSink } from '../registry/index.ts';
import { type OpenedReference, openTransport, platformFlag } from './reference.ts';
import { type LazyClient, lazyClient, type RegistryFlags } from './registry-flags.ts';

/**
 * The copy action of copy, push and pull: open the source, narrow an index unless --all (saying so), write the sink,
 * then copy the image's referrers — signatures, attestations, SBOMs — unless --no-referrers.
 */

/** The flags of the commands that copy an image (copy, pull, push) beyond the registry ones. */
export interface CopyFlags extends RegistryFlags {
  readonly all: boolean;
  readonly platform?: string;
  readonly tag?: readonly string[];
  /** commander's `--no-referrers`: false when given. */
  readonly referrers?: boolean;
}

/** Returns the digests of an index and of every manifest under it (nested indexes included), each once. */
async function indexDigests(index: ImageIndex, out: Set<Digest> = new Set()): Promise<Set<Digest>> {
  out.add(await index.digest());
  for (const d of (await index.manifest()).manifests) {
    if (out.has(d.digest)) continue;
    if (isIndexType(d.mediaType)) await indexDigests(await index.imageIndex(d.digest), out);
    else out.add(d.digest);
  }
  return out;
}

/** The store of a transport, or undefined for an archive (which holds no referrers). */
async function storeOf(r: OpenedReference): Promise<ArtifactStore | undefined> {
  if (r.reference.transport === 'oci-archive' || r.reference.transport === 'docker-archive') return undefined;
  return r.store('copy referrers of');
}

/**
 * Copies the referrers of what was copied; says on stderr what came along, what was left behind (the index's own
 * referrers when it was narrowed; everything when the destination is an archive).
 */
async function carryReferrers(
  from: OpenedReference,
  to: OpenedReference,
  source: Artifact,
  copied: Artifact,
  say: (s: string) => void,
): Promise<void> {
  const fromStore = await storeOf(from);
  if (!fromStore) return;
  const subjects =
    copied.kind === 'image' ? [await copied.image.digest()] : [...(await indexDigests(copied.index))];
  const toStore = await storeOf(to);
  if (!toStore) {
    let n = 0;
    for (const s of subjects) n += (await fromStore.listReferrers(s)).length;
    if (n > 0)
      say(
        `pare: note: ${n} referrer(s) (signatures, attestations, SBOMs) not copied: ${to.name} is an archive, which holds none; copy to a registry or oci:DIR to keep them`,
      );
    return;
  }
  if (source.kind === 'index' && copied.kind === 'image') {
    const left = (await fromStore.listReferrers(await source.index.digest())).length;
    if (left > 0)
      say(
        `pare: note: ${left} referrer(s) of the index ${await source.index.digest()} not copied: they refer to the whole index, and only one image was copied (--all keeps them)`,
      );
  }
  const done = await copyReferrers(fromStore, toStore, subjects);
  if (done.length > 0)
    say(
      `pare: copied ${done.length} referrer(s) to ${to.name}: ${done.map((c) => (c.via === 'referrer' ? c.descriptor.digest.slice(0, 19) : c.via.tag)).join(', ')}`,
    );
}

/**
 * Copies `src` to `dst` with a client made from `flags` (an index narrowed to `--platform` unless `all`, with a note
 * on stderr; tagged with every `--tag`; referrers copied unless `--no-referrers`), prints the written digest on
 * stdout and closes the client. A bad `--platform` throws USAGE before anything is opened.
 */
export async function copyAndPrint(
  srcInput: string,
  src: TransportReference,
  dstInput: string,
  dst: TransportReference,
  flags: CopyFlags,
): Promise<void> {
  const platform = platformFlag(flags.platform);
  const client: LazyClient = lazyClient(flags);
  try {
    const from = await openTransport(srcInput, src, client);
    const source = await from.artifact();
    const artifact: Artifact =
      source.kind === 'index' && !flags.all ? { kind: 'image', image: await from.image(platform) } : source;
    // A local source is read and checked whole (digests, sizes, diff_ids, limits) before anything is written.
    if (src.transport !== 'docker') await verifyArtifact(artifact);
    const d = await writeSink(await client.get(), dst, artifact, {
      ...(platform ? { platform } : {}),
      ...(flags.tag?.length ? { tags: flags.tag } : {}),
    });
    if (flags.referrers !== false) {
      const to = await openTransport(dstInput, dst, client);
      await carryReferrers(from, to, source, artifact, (s) => process.stderr.write(`${s}\n`));
    }
    process.stdout.write(`${d.digest}\n`);
  } finally {
    await client.close();
  }
}
