import { auditTree } from '../audit/index.ts';
import type { Tree } from '../fstree/index.ts';
import { inventory } from '../sbom/index.ts';
import type { VexData } from './data.ts';
import { type Decision, decide } from './decide.ts';
import type { Finding } from './findings.ts';

export interface VexImageOptions {
  /** The image name, for the audit and SBOM inventory. */
  readonly name: string;
  readonly data: VexData;
}

/**
 * Decides every finding for an image's root filesystem: the audit of its ELF files (imports and package owners, the
 * analysis `pare audit --uses` prints), its installed packages with pare's SBOM purls, its release codename, then
 * `decide`. Pure over the tree.
 */
export async function vexImage(
  tree: Tree,
  findings: readonly Finding[],
  o: VexImageOptions,
): Promise<Decision[]> {
  const [audit, inv] = await Promise.all([
    auditTree(tree, { name: o.name, closure: true, imports: true, packages: true, scanCode: false }),
    inventory(tree, { name: o.name, files: false }),
  ]);
  // No dpkg database at all: which packages are installed is unknown (not "none").
  const hasDpkg =
    tree.get('/var/lib/dpkg/status') !== undefined || tree.get('/var/lib/dpkg/status.d') !== undefined;
  return decide(
    {
      tree,
      audit,
      packages: hasDpkg ? inv.packages : undefined,
      codename: inv.os?.versionCodename,
      data: o.data,
    },
    findings,
  );
}
