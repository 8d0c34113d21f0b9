import {
  DEFAULT_GROUPS,
  DEFAULT_USERS,
  type GroupEntry,
  groupFile,
  NOLOGIN,
  type PasswdEntry,
  parseGroup,
  parsePasswd,
  passwdFile,
} from '../accounts/index.ts';
import type { LoadedConfig } from '../config/index.ts';
import { UsageError } from '../errors.ts';
import { bufferContent, normalizePath, parentPath, type Tree, TreeBuilder } from '../fstree/index.ts';

/**
 * `accounts:` → the base tree with the users and groups appended to its /etc/passwd and /etc/group and the users'
 * homes created. They belong to the base (the packages layer, or the minimal base) so `owner:` and `image.user:` find
 * them by name like any other account, and a cached packages layer already holds them.
 *
 * Nothing is shadowed: a name or id the base already has (the default accounts root, nonroot 65532 and nobody 65534,
 * or one a package shipped) is refused, as are duplicates within `accounts:`, a user whose primary group does not
 * exist, a member who is no user, and a `files:` entry writing /etc/passwd or /etc/group next to `accounts:`.
 */
export async function withAccounts(
  base: Tree | undefined,
  loaded: LoadedConfig,
  epoch: number,
): Promise<Tree | undefined> {
  const spec = loaded.config.accounts;
  if (!spec || (spec.users.length === 0 && spec.groups.length === 0)) return base;
  const fail = (keys: (string | number)[], message: string): never => {
    throw new UsageError('CONFIG_INVALID', `${loaded.locate(keys)}: ${message}`);
  };
  for (const [i, f] of loaded.config.files.entries()) {
    let dest: string;
    try {
      dest = normalizePath(f.dest);
    } catch {
      continue; // filesTree reports it
    }
    if (dest === '/etc/passwd' || dest === '/etc/group')
      fail(
        ['files', i, 'dest'],
        `accounts: writes ${dest}; remove this files: entry (add its accounts to accounts: instead)`,
      );
  }

  const read = async (p: string) =>
    base?.file(p) ? new TextDecoder().decode(await base.readFile(p)) : undefined;
  const passwdText = await read('/etc/passwd');
  const groupText = await read('/etc/group');
  const baseUsers = parsePasswd(passwdText ?? '');
  const baseGroups = parseGroup(groupText ?? '');
  const builtIn = (name: string) => (DEFAULT_USERS.some((u) => u.name === name) ? 'built in' : undefined);
  const builtInGroup = (name: string) =>
    DEFAULT_GROUPS.some((g) => g.name === name) ? 'built in' : undefined;
  const baseName = loaded.config.packages?.length ? "the packages' /etc/passwd" : "the base's /etc/passwd";

  // Everything already taken: the defaults (whether or not the base wrote them) and the base's own entries.
  const users = new Map<string, { name: string; uid: number; where: string }>();
  const uids = new Map<number, { name: string; where: string }>();
  for (const u of [...DEFAULT_USERS, ...baseUsers]) {
    const where = builtIn(u.name) ?? `in ${baseName}`;
    if (!users.has(u.name)) users.set(u.name, { name: u.name, uid: u.uid, where });
    if (!uids.has(u.uid)) uids.set(u.uid, { name: u.name, where });
  }
  const groups = new Map<string, { gid: number; where: string }>();
  const gids = new Map<number, { name: string; where: string }>();
  const groupWhere = baseName.replace('passwd', 'group');
  for (const g of [...DEFAULT_GROUPS, ...baseGroups]) {
    const where = builtInGroup(g.name) ?? `in ${groupWhere}`;
    if (!groups.has(g.name)) groups.set(g.name, { gid: g.gid, where });
    if (!gids.has(g.gid)) gids.set(g.gid, { name: g.name, where });
  }

  const newGroups: GroupEntry[] = [];
  for (const [i, g] of spec.groups.entries()) {
    const taken = groups.get(g.name);
    if (taken)
      fail(
        ['accounts', 'groups', i, 'name'],
        `group ${JSON.stringify(g.name)} already exists (${taken.where}, gid ${taken.gid}); pick another name`,
      );
    const byId = gids.get(g.gid);
    if (byId)
      fail(
        ['accounts', 'groups', i, 'gid'],
        `gid ${g.gid} is already group ${JSON.stringify(byId.name)}'s (${byId.where}); pick another gid`,
      );
    groups.set(g.name, { gid: g.gid, where: 'in accounts.groups' });
    gids.set(g.gid, { name: g.name, where: 'in accounts.groups' });
    newGroups.push({ name: g.name, gid: g.gid, members: g.members ?? [] });
  }

  const newUsers: PasswdEntry[] = [];
  for (const [i, u] of spec.users.entries()) {
    const taken = users.get(u.name);
    if (taken)
      fail(
        ['accounts', 'users', i, 'name'],
        `user ${JSON.stringify(u.name)} already exists (${taken.where}, uid ${taken.uid}); pick another name`,
      );
    const byId = uids.get(u.uid);
    if (byId)
      fail(
        ['accounts', 'users', i, 'uid'],
        `uid ${u.uid} is already user ${JSON.stringify(byId.name)}'s (${byId.where}); pick another uid`,
      );
    if (!gids.has(u.gid))
      fail(
        ['accounts', 'users', i, 'gid'],
        `gid ${u.gid} is no group; add { name: …, gid: ${u.gid} } to accounts.groups or use an existing group's gid`,
      );
    users.set(u.name, { name: u.name, uid: u.uid, where: 'in accounts.users' });
    uids.set(u.uid, { name: u.name, where: 'in accounts.users' });
    newUsers.push({
      name: u.name,
      uid: u.uid,
      gid: u.gid,
      gecos: u.gecos ?? u.name,
      home: u.home ?? `/home/${u.name}`,
      shell: u.shell ?? NOLOGIN,
    });
  }
  for (const [i, g] of spec.groups.entries())
    for (const [j, m] of (g.members ?? []).entries())
      if (!users.has(m))
        fail(
          ['accounts', 'groups', i, 'members', j],
          `member ${JSON.stringify(m)} is no user; add it to accounts.users`,
        );

  const b = base ? TreeBuilder.from(base, { mtime: epoch }) : new TreeBuilder({ mtime: epoch });
  const file = (text: string) => ({
    kind: 'file' as const,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: epoch,
    content: bufferContent(text),
  });
  const append = (old: string | undefined, text: string) =>
    old === undefined || old === '' ? text : `${old}${old.endsWith('\n') ? '' : '\n'}${text}`;
  const dirDefaults = { mode: 0o755, uid: 0, gid: 0, mtime: epoch };
  b.mkdirp('/etc', dirDefaults);
  if (newUsers.length) b.put('/etc/passwd', file(append(passwdText, passwdFile(newUsers))));
  if (newGroups.length) b.put('/etc/group', file(append(groupText, groupFile(newGroups))));
  for (const u of newUsers) {
    if (base?.get(u.home) !== undefined) continue; // the base's own directory (or link) stays as it is
    b.mkdirp(parentPath(u.home), dirDefaults);
    b.put(u.home, { kind: 'dir', mode: 0o700, uid: u.uid, gid: u.gid, mtime: epoch });
  }
  return b.build();
}
