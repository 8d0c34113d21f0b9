import type { Command } from 'commander';
import { UsageError } from '../../errors.ts';
import { type CopyFlags, copyAndPrint, registryArg, transportArg, withRegistryFlags } from './copy.ts';

/**
 * `pare push SRC HOST/REPO[:TAG]`: uploads a local image or index (OCI layout, oci-archive, docker-archive) to a
 * registry — every platform of an index unless `--platform` picks one — and prints the pushed digest.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('push')
      .description('push a local image or index (OCI layout or archive) to a registry')
      .argument('<src>', 'oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or a layout directory')
      .argument('<dst>', 'HOST[:PORT]/REPO[:TAG] (docker:// optional)')
      .option('--platform <os/arch[/variant]>', 'push only this image of an index')
      .option(
        '--tag <tag>',
        'also tag the pushed manifest with this (repeatable)',
        (v: string, p: string[]) => [...p, v],
        [],
      ),
  ).action(async (src: string, dst: string, opts: Omit<CopyFlags, 'all'>) => {
    const from = await transportArg(src);
    if (from.transport === 'docker')
      throw new UsageError(
        'USAGE',
        `cannot push ${JSON.stringify(src)}: it is a registry reference; use pare copy`,
      );
    const to = registryArg(dst);
    // note: unlike pull and copy, push keeps every platform of an index unless --platform picks one
    await copyAndPrint(from, { transport: 'docker', ref: to }, { ...opts, all: opts.platform === undefined });
  });
}
