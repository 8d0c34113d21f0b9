import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Image, imageToTree } from '../oci/index.ts';
import type { RunSource } from './prepare.ts';
import { resolveRootfsUser } from './prepare.ts';
import { type ExecUser, resolveUser } from './user.ts';

/**
 * Turns the IMAGE argument of `pare run` into a RunSource: a directory without an `oci-layout` file is an unpacked root
 * filesystem; anything else is an image reference, opened by `openImage` (the CLI's one reference opener, which
 * knows every transport and narrows an index to one platform).
 */
export async function openRunSource(
  arg: string,
  openImage: (reference: string) => Promise<Image>,
): Promise<RunSource> {
  const st = await stat(arg).catch(() => undefined);
  if (st?.isDirectory() && !(await stat(join(arg, 'oci-layout')).catch(() => undefined)))
    return { kind: 'rootfs', path: arg };
  return { kind: 'image', image: await openImage(arg) };
}

/**
 * Resolves the user for `source` without unpacking to the cache (used by `--print`): names go through the image's
 * /etc/passwd and /etc/group, read from the image tree in memory.
 */
export async function resolveSourceUser(source: RunSource, user: string | undefined): Promise<ExecUser> {
  if (source.kind === 'rootfs') return resolveRootfsUser(source.path, source.config, user);
  const config = await source.image.config();
  const spec = user !== undefined && user !== '' ? user : config.config?.User;
  if (spec === undefined || spec === '') return resolveUser(undefined, {});
  const tree = await imageToTree(source.image);
  const dec = new TextDecoder();
  const read = async (p: string) => (tree.file(p) ? dec.decode(await tree.readFile(p)) : undefined);
  return resolveUser(
    spec,
    { passwd: await read('/etc/passwd'), group: await read('/etc/group') },
    user ? 'option' : 'image',
  );
}
