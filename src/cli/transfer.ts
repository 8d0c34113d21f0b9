import type { Artifact } from '../oci/index.ts';
import { type TransportReference, writeSink } from '../registry/index.ts';
import { openTransport } from './reference.ts';
import { lazyClient, platformFlag, type RegistryFlags } from './registry-flags.ts';

/** The copy action of copy, push and pull: open the source, narrow an index unless --all, write the sink. */

/** The flags of the commands that copy an image (copy, pull, push) beyond the registry ones. */
export interface CopyFlags extends RegistryFlags {
  readonly all: boolean;
  readonly platform?: string;
  readonly tag?: readonly string[];
}

/**
 * Copies `src` to `dst` with a client made from `flags` (an index narrowed to `--platform` unless `all`, with a note
 * on stderr; tagged with every `--tag`), prints the written digest on stdout and closes the client. A bad
 * `--platform` throws USAGE before anything is opened.
 */
export async function copyAndPrint(
  srcInput: string,
  src: TransportReference,
  dst: TransportReference,
  flags: CopyFlags,
): Promise<void> {
  const platform = platformFlag(flags.platform);
  const client = lazyClient(flags);
  try {
    const from = openTransport(srcInput, src, client);
    let artifact: Artifact = await from.artifact();
    if (artifact.kind === 'index' && !flags.all)
      artifact = { kind: 'image', image: await from.image(platform) };
    const d = await writeSink(client.get(), dst, artifact, {
      ...(platform ? { platform } : {}),
      ...(flags.tag?.length ? { tags: flags.tag } : {}),
    });
    process.stdout.write(`${d.digest}\n`);
  } finally {
    await client.close();
  }
}
