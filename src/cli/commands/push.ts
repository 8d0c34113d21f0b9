import type { Command } from 'commander';
import { UsageError } from '../../errors.ts';
import { parseImageArgument, registryArg } from '../reference.ts';
import { collect, withRegistryFlags } from '../registry-flags.ts';
import { type CopyFlags, copyAndPrint } from '../transfer.ts';

/**
 * `pare push SRC HOST/REPO[:TAG]`: uploads a local image or index (OCI layout, oci-archive, docker-archive) to a
 * registry — every platform of an index unless `--platform` picks one — with its signatures, attestations and SBOMs
 * (unless `--no-referrers`), and prints the pushed digest.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('push')
      .description('push a local image or index (OCI layout or archive) to a registry')
      .argument('<src>', 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or a layout directory')
      .argument('<dst>', 'HOST[:PORT]/REPO[:TAG] (docker:// optional)')
      .option('--platform <os/arch[/variant]>', 'push only this image of an index')
      .option('--tag <tag>', 'also tag the pushed manifest with this (repeatable)', collect, [])
      .option('--no-referrers', 'do not copy the signatures, attestations and SBOMs that refer to the image'),
  ).action(async (src: string, dst: string, opts: Omit<CopyFlags, 'all'>) => {
    const from = await parseImageArgument(src);
    if (from.transport === 'docker')
      throw new UsageError(
        'USAGE',
        `cannot push ${JSON.stringify(src)}: it is a registry reference; use pare copy`,
      );
    const to = await registryArg(dst, 'a registry repository to push to');
    // note: unlike pull and copy, push keeps every platform of an index unless --platform picks one
    await copyAndPrint(
      src,
      from,
      dst,
      { transport: 'docker', ref: to },
      { ...opts, all: opts.platform === undefined },
    );
  });
}
