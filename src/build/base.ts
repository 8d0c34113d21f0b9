import {
  DEFAULT_GROUPS,
  DEFAULT_USERS,
  groupFile,
  NONROOT_HOME,
  NONROOT_ID,
  nsswitchFile,
  parseGroup,
  parsePasswd,
  passwdFile,
} from '../accounts/index.ts';
import { usrMergedDirs } from '../debian/index.ts';
import { bufferContent, symlinkEntry, type Tree, TreeBuilder } from '../fstree/index.ts';

/**
 * The `minimal` base: what a distroless `static` image has beyond its packages — the default accounts of
 * src/accounts (root, nonroot 65532, nobody 65534, no login shell; the same files a Debian build writes), a sticky
 * world-writable /tmp, nonroot's home, and the merged-/usr links of Debian (`/bin → usr/bin`, `/sbin`, `/lib`, and
 * per architecture `/lib64` …) with their /usr directories, so a program or script written for Debian finds its paths.
 */

/** Returns the minimal base tree with every mtime at `epoch`; `arch` (Debian's name) picks the merged-/usr links. */
export function minimalBase(epoch: number, arch?: string): Tree {
  const dir = (mode: number, uid = 0) => ({ kind: 'dir' as const, mode, uid, gid: uid, mtime: epoch });
  const file = (text: string, mode = 0o644) => ({
    kind: 'file' as const,
    mode,
    uid: 0,
    gid: 0,
    mtime: epoch,
    content: bufferContent(text),
  });
  const b = new TreeBuilder({ mtime: epoch });
  for (const d of arch === undefined ? [] : usrMergedDirs(arch)) {
    b.mkdirp(`/usr/${d}`, { mtime: epoch });
    b.put(`/${d}`, symlinkEntry(`usr/${d}`, { mtime: epoch }));
  }
  return b
    .put('/etc', dir(0o755))
    .put('/etc/passwd', file(passwdFile()))
    .put('/etc/group', file(groupFile()))
    .put('/etc/nsswitch.conf', file(nsswitchFile()))
    .put('/home', dir(0o755))
    .put(NONROOT_HOME, dir(0o700, NONROOT_ID))
    .put('/root', dir(0o700))
    .put('/tmp', dir(0o1777))
    .build();
}

/** Users and groups by name: the uid/gid `owner:` and `image.user:` names resolve to. */
export interface Ids {
  readonly users: Map<string, { uid: number; gid: number }>;
  readonly groups: Map<string, number>;
}

/** Returns the uid/gid for a user or group name from the tree's /etc/passwd or /etc/group, plus the default accounts. */
export async function idsFromTree(tree: Tree): Promise<Ids> {
  const users = new Map(DEFAULT_USERS.map((u) => [u.name, { uid: u.uid, gid: u.gid }]));
  const groups = new Map(DEFAULT_GROUPS.map((g) => [g.name, g.gid]));
  const read = async (p: string) => (tree.file(p) ? new TextDecoder().decode(await tree.readFile(p)) : '');
  for (const u of parsePasswd(await read('/etc/passwd'))) users.set(u.name, { uid: u.uid, gid: u.gid });
  for (const g of parseGroup(await read('/etc/group'))) groups.set(g.name, g.gid);
  return { users, groups };
}
