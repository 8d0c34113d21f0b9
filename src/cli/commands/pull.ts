import type { Command } from 'commander';
import { UsageError } from '../../errors.ts';
import type { TransportReference } from '../../registry/index.ts';
import { type CopyFlags, copyAndPrint, registryArg, transportArg, withRegistryFlags } from './copy.ts';

/**
 * `pare pull HOST/REPO[:TAG|@DIGEST] DST`: downloads an image into an OCI layout (a plain path is a layout directory)
 * or archive. Like `docker pull`, an index is narrowed to this host's platform (or `--platform`); `--all` keeps the
 * whole index. Every blob is verified before it is stored; prints the stored digest.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('pull')
      .description('pull an image from a registry into an OCI layout or archive')
      .argument('<src>', 'HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// optional)')
      .argument('<dst>', 'DIR[:TAG] or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]')
      .option('--all', 'keep every platform of an index', false)
      .option('--platform <os/arch[/variant]>', 'the image to take from an index (default: this host)'),
  ).action(async (src: string, dst: string, opts: CopyFlags) => {
    const from = registryArg(src);
    let to: TransportReference;
    if (/^(oci|oci-archive|docker-archive):/.test(dst)) to = await transportArg(dst);
    else if (dst.startsWith('docker://'))
      throw new UsageError(
        'USAGE',
        `cannot pull into ${JSON.stringify(dst)}: it is a registry; use pare copy`,
      );
    else to = await transportArg(`oci:${dst}`);
    await copyAndPrint({ transport: 'docker', ref: from }, to, opts);
  });
}
