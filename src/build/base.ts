import { bufferContent, type Tree, TreeBuilder } from '../fstree/index.ts';

/**
 * The `minimal` base: what a distroless `static` image has beyond its packages — users root (0), nonroot (65532)
 * and nobody (65534) with no login shell, their groups, a sticky world-writable /tmp and nonroot's home.
 */
export const NONROOT = 65532;
export const NOBODY = 65534;

export const PASSWD = [
  'root:x:0:0:root:/root:/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin',
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin',
  '',
].join('\n');
export const GROUP = ['root:x:0:', 'nobody:x:65534:', 'nonroot:x:65532:', 'tty:x:5:', 'staff:x:50:', ''].join(
  '\n',
);

/** Returns the minimal base tree with every mtime at `epoch`. */
export function minimalBase(epoch: number): Tree {
  const dir = (mode: number, uid = 0) => ({ kind: 'dir' as const, mode, uid, gid: uid, mtime: epoch });
  const file = (text: string, mode = 0o644) => ({
    kind: 'file' as const,
    mode,
    uid: 0,
    gid: 0,
    mtime: epoch,
    content: bufferContent(text),
  });
  return new TreeBuilder({ mtime: epoch })
    .put('/etc', dir(0o755))
    .put('/etc/passwd', file(PASSWD))
    .put('/etc/group', file(GROUP))
    .put(
      '/etc/nsswitch.conf',
      file(
        'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n',
      ),
    )
    .put('/home', dir(0o755))
    .put('/home/nonroot', dir(0o700, NONROOT))
    .put('/root', dir(0o700))
    .put('/tmp', dir(0o1777))
    .build();
}

/** Returns the uid/gid for a user or group name from the tree's /etc/passwd or /etc/group, plus the well-known names. */
export async function idsFromTree(
  tree: Tree,
): Promise<{ users: Map<string, { uid: number; gid: number }>; groups: Map<string, number> }> {
  const users = new Map<string, { uid: number; gid: number }>([
    ['root', { uid: 0, gid: 0 }],
    ['nonroot', { uid: NONROOT, gid: NONROOT }],
    ['nobody', { uid: NOBODY, gid: NOBODY }],
  ]);
  const groups = new Map<string, number>([
    ['root', 0],
    ['nonroot', NONROOT],
    ['nobody', NOBODY],
  ]);
  const read = async (p: string) => (tree.file(p) ? new TextDecoder().decode(await tree.readFile(p)) : '');
  for (const line of (await read('/etc/passwd')).split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!))
      users.set(f[0]!, { uid: Number(f[2]), gid: Number(f[3]) });
  }
  for (const line of (await read('/etc/group')).split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]!)) groups.set(f[0]!, Number(f[2]));
  }
  return { users, groups };
}
