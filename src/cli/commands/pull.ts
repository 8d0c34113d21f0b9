import type { Command } from 'commander';
import { UsageError } from '../../errors.ts';
import { localRef, parseLocalTransport } from '../../layout/index.ts';
import type { TransportReference } from '../../registry/index.ts';
import { parseImageArgument } from '../reference.ts';
import { withRegistryFlags } from '../registry-flags.ts';
import { type CopyFlags, copyAndPrint } from '../transfer.ts';

/**
 * `pare pull HOST/REPO[:TAG|@DIGEST] DST`: downloads an image into an OCI layout (a plain path is a layout directory)
 * or archive. Like `docker pull`, an index is narrowed to this host's platform (or `--platform`), with a note on
 * stderr; `--all` keeps the whole index. Every blob is verified before it is stored; the image's referrers come along into a layout unless
 * `--no-referrers`; prints the stored digest.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('pull')
      .description('pull an image from a registry into an OCI layout or archive')
      .argument('<src>', 'HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// optional)')
      .argument('<dst>', 'DIR[:TAG] or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]')
      .option('--all', 'keep every platform of an index', false)
      .option('--platform <os/arch[/variant]>', 'the image to take from an index (default: this host)')
      .option('--no-referrers', 'do not copy the signatures, attestations and SBOMs that refer to the image'),
  ).action(async (src: string, dst: string, opts: CopyFlags) => {
    const from = await parseImageArgument(src);
    if (from.transport !== 'docker')
      throw new UsageError(
        'USAGE',
        `cannot pull ${JSON.stringify(src)}: it is a local image; pull takes a registry image (HOST[:PORT]/REPO[:TAG]); use pare copy`,
      );
    if (dst.startsWith('docker://'))
      throw new UsageError(
        'USAGE',
        `cannot pull into ${JSON.stringify(dst)}: it is a registry; use pare copy`,
      );
    const to: TransportReference = parseLocalTransport(dst) ?? localRef('oci', dst, dst);
    await copyAndPrint(src, from, dst, to, opts);
  });
}
