import type { Command } from 'commander';
import { type DiffInput, diffImages, renderDiff } from '../../audit/index.ts';
import { printJson } from '../format.ts';
import { type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

interface DiffFlags extends Partial<RegistryFlags> {
  json?: boolean;
  platform?: string;
}

/**
 * `pare diff A B`: config, layers, packages, files and ELF hardening that differ between two images, and the first
 * reason their digests differ (src/audit/diff.ts). Any reference form `pare inspect` takes. Exit 0 when the images
 * are the same (one manifest digest), 1 when they differ (as diff(1)), 2 on bad input.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('diff')
      .description('show what differs between two images, and the first reason their digests differ')
      .argument(
        '<a>',
        'image (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, [docker://]HOST/REPO[:TAG])',
      )
      .argument('<b>', 'image to compare with')
      .option('--json', 'print the pare.diff/v1 JSON document (see src/audit/README.md)')
      .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image'),
  ).action(async (a: string, b: string, flags: DiffFlags) => {
    const [{ imageToTree }, { openReference, platformFlag }, { lazyClient }] = await Promise.all([
      import('../../oci/index.ts'),
      import('../reference.ts'),
      import('../registry-flags.ts'),
    ]);
    const platform = platformFlag(flags.platform);
    const client = lazyClient({ ...flags, quiet: true });
    try {
      const open = async (name: string): Promise<DiffInput> => {
        const image = await (await openReference(name, client)).image(platform);
        const origins = new Map<string, string>();
        const tree = await imageToTree(image, { origins });
        return { name, image, tree, origins };
      };
      const x = await open(a);
      const y = await open(b);
      const d = await diffImages(x, y);
      if (flags.json) printJson(d);
      else process.stdout.write(renderDiff(d));
      if (!d.identical) process.exitCode = 1;
    } finally {
      await client.close();
    }
  });
}
