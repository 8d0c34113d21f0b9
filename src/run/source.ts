import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RunError } from '../errors.ts';
import { parseLocalRef, readLocal } from '../layout/index.ts';
import { imageToTree, type Platform, selectImage } from '../oci/index.ts';
import type { RunSource } from './prepare.ts';
import { resolveRootfsUser } from './prepare.ts';
import { type ExecUser, resolveUser } from './user.ts';

/**
 * Turns the IMAGE argument of `pare run` into a RunSource: `oci:DIR[:tag]`, `oci-archive:FILE[:tag]`,
 * `docker-archive:FILE[:tag]`, a bare path to an OCI layout directory or an archive (layout.parseLocalRef rules), or a
 * directory without an `oci-layout` file, taken as an unpacked root filesystem.
 */

const REMOTE = /^(docker:\/\/|[a-z0-9.-]+\.[a-z]+(:\d+)?\/)/;

/** Opens `arg` (see module comment); an index resolves to the image for `platform` (default: this host). */
export async function openRunSource(arg: string, options: { platform?: Platform } = {}): Promise<RunSource> {
  // A registry reference, unless a file or directory of that name exists (`my.dir/layout` is a path).
  if (
    arg.startsWith('docker://') ||
    (REMOTE.test(arg) && !(await stat(arg.replace(/:[^/]*$/, '')).catch(() => undefined)))
  ) {
    throw new RunError(
      'RUN_IMAGE_UNSUPPORTED',
      `cannot run ${JSON.stringify(arg)}: pare run takes a local image; copy it first (pare pull ${arg} oci:DIR:tag) and run oci:DIR:tag`,
    );
  }
  if (!/^(oci|oci-archive|docker-archive):/.test(arg)) {
    const st = await stat(arg).catch(() => undefined);
    if (st?.isDirectory() && !(await stat(join(arg, 'oci-layout')).catch(() => undefined))) {
      return { kind: 'rootfs', path: arg };
    }
  }
  const artifact = await readLocal(await parseLocalRef(arg));
  return {
    kind: 'image',
    image: await selectImage(artifact, ...(options.platform ? [options.platform] : [])),
  };
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
