import type { Command } from 'commander';
import { parseImageArgument } from '../reference.ts';
import { collect, withRegistryFlags } from '../registry-flags.ts';
import { type CopyFlags, copyAndPrint } from '../transfer.ts';

/**
 * `pare copy SRC DST`: any transport to any (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`, a bare path or
 * `HOST/REPO:TAG`), like `skopeo copy`; an index is narrowed to one platform unless `--all`, and says so on stderr. The image's referrers (signatures,
 * attestations, SBOMs: OCI 1.1 referrers and cosign v2 tags) are copied too unless `--no-referrers`.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('copy')
      .description('copy an image or index between registries, OCI layouts and archives (like skopeo copy)')
      .argument(
        '<src>',
        'docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or a path',
      )
      .argument('<dst>', 'same forms as <src> (a bare path that does not exist yet: write oci:DIR)')
      .option('--all', 'copy every platform of an index', false)
      .option(
        '--platform <os/arch[/variant]>',
        'the image to take from an index without --all (default: this host)',
      )
      .option('--tag <tag>', 'also tag the copy with this (registry destinations; repeatable)', collect, [])
      .option('--no-referrers', 'do not copy the signatures, attestations and SBOMs that refer to the image'),
  ).action(async (src: string, dst: string, opts: CopyFlags) =>
    copyAndPrint(src, await parseImageArgument(src), dst, await parseImageArgument(dst), opts),
  );
}
