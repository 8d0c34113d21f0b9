import { TreeError } from '../errors.ts';
import { baseName, isWithin, normalizePath, parentPath } from './path.ts';
import { type Entry, type Tree, TreeBuilder } from './tree.ts';

/**
 * Applying image layers and merging trees.
 *
 * OCI layers are change sets (https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts): a
 * `.wh.NAME` file deletes NAME from the layers below, `.wh..wh..opq` in a directory hides everything below that
 * came from lower layers. Whiteouts never appear in the result.
 */

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/**
 * Returns `lower` with the change set `layer` applied (entries in layer order). Whiteouts delete from `lower` only,
 * never what the same layer adds, as the spec requires. A non-directory replacing a directory removes its subtree.
 */
export function applyLayer(lower: Tree, layer: Iterable<readonly [string, Entry]>): Tree {
  const b = TreeBuilder.from(lower);
  const added = new Set<string>();
  const deferredOpaque: string[] = [];
  const deferredWhiteouts: string[] = [];
  const entries: [string, Entry][] = [];
  for (const [raw, e] of layer) {
    const p = normalizePath(raw);
    const name = baseName(p);
    if (name === OPAQUE_WHITEOUT) deferredOpaque.push(parentPath(p));
    else if (name.startsWith(WHITEOUT_PREFIX)) {
      const victim = `${parentPath(p) === '/' ? '' : parentPath(p)}/${name.slice(WHITEOUT_PREFIX.length)}`;
      deferredWhiteouts.push(normalizePath(victim));
    } else entries.push([p, e]);
  }
  // Deletions apply to the lower layers only, so do them first, then add this layer's entries.
  for (const dir of deferredOpaque) {
    for (const child of lower.children(dir)) b.remove(child);
  }
  for (const victim of deferredWhiteouts) b.remove(victim);
  for (const [p, e] of entries) {
    if (added.has(p))
      throw new TreeError('TREE_CONFLICT', `cannot apply layer: ${JSON.stringify(p)} appears twice`, {
        path: p,
      });
    added.add(p);
    b.put(p, e);
  }
  return b.build();
}

/** How `merge` settles two entries at one path: return the entry to keep, or throw. */
export type ConflictResolver = (path: string, a: Entry, b: Entry) => Entry;

/** The default resolver: two directories → the first one's metadata; anything else → TREE_CONFLICT. */
export const conflictError: ConflictResolver = (path, a, b) => {
  if (a.kind === 'dir' && b.kind === 'dir') return a;
  throw new TreeError(
    'TREE_CONFLICT',
    `cannot merge trees: both have ${JSON.stringify(path)} (${a.kind} and ${b.kind})`,
    {
      path,
    },
  );
};

/** Keeps the later tree's entry at every conflicting path (an overlay without whiteouts). */
export const conflictReplace: ConflictResolver = (_path, _a, b) => b;

/**
 * Returns the union of `trees`. Where two trees have one path, `resolve` settles it (default: directories merge, any
 * other clash throws TREE_CONFLICT). With the default resolver the result does not depend on the order of the trees
 * except for directory metadata, which comes from the first tree that has the directory.
 */
export function merge(trees: readonly Tree[], resolve: ConflictResolver = conflictError): Tree {
  if (trees.length === 1) return trees[0]!;
  const b = new TreeBuilder();
  let first = true;
  // Hardlinks are placed after everything else: a link may sort before the file it names.
  const links = new Map<string, Entry>();
  for (const t of trees) {
    for (const [p, e] of t) {
      if (p === '/') {
        if (first) b.put('/', e);
        continue;
      }
      const old = b.get(p) ?? links.get(p);
      if (old === undefined) {
        if (e.kind === 'hardlink') links.set(p, e);
        else b.put(p, e);
        continue;
      }
      const keep = resolve(p, old, e);
      if (keep === old) continue;
      links.delete(p);
      if (keep.kind === 'hardlink') {
        b.remove(p);
        links.set(p, keep);
      } else b.put(p, keep);
    }
    first = false;
  }
  for (const [p, e] of links) b.put(p, e);
  return b.build();
}

/** True when `path` or one of its ancestors is a whiteout name (used by layer readers). */
export function isWhiteoutPath(path: string): boolean {
  return normalizePath(path)
    .split('/')
    .some((c) => c.startsWith(WHITEOUT_PREFIX));
}

export { isWithin };
