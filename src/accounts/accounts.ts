/**
 * The account databases of an image: passwd(5) and group(5) as data, their parsers and renderers, and the one set of
 * hardened default accounts every pare image starts from (a Debian build, the `minimal` base, the run sandbox's
 * default user). Pure: no I/O.
 *
 * The defaults are distroless's: no login shells, no passwords, three users. Debian's base-passwd would create these
 * from its postinst (which pare does not run), with many more system accounts; a minimal image needs only root, the
 * unprivileged default user and nobody (the overflow id the kernel shows for unmapped ids). The overflow group is
 * `nogroup`, Debian's name for it.
 */

/** The largest uid or gid: (uid_t)-1 means "no id" to chown(2) and user namespaces. */
export const ID_MAX = 0xfffffffe;
/** uid/gid of the default unprivileged user, as in distroless. */
export const NONROOT_ID = 65532;
export const NOBODY_ID = 65534;
export const NONROOT_HOME = '/home/nonroot';
/** The shell of every default account: none can log in. */
export const NOLOGIN = '/sbin/nologin';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The GECOS field (usually the full name). */
  readonly gecos?: string;
  readonly home: string;
  readonly shell: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** The default users, in /etc/passwd order. */
export const DEFAULT_USERS: readonly PasswdEntry[] = Object.freeze([
  { name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell: NOLOGIN },
  { name: 'nonroot', uid: NONROOT_ID, gid: NONROOT_ID, gecos: 'nonroot', home: NONROOT_HOME, shell: NOLOGIN },
  { name: 'nobody', uid: NOBODY_ID, gid: NOBODY_ID, gecos: 'nobody', home: '/nonexistent', shell: NOLOGIN },
]);

/** The default groups, in /etc/group order. */
export const DEFAULT_GROUPS: readonly GroupEntry[] = Object.freeze([
  { name: 'root', gid: 0, members: [] },
  { name: 'nonroot', gid: NONROOT_ID, members: [] },
  { name: 'nogroup', gid: NOBODY_ID, members: [] },
]);

/** Returns passwd(5) text for `users` (default: the default users), one line each, newline-terminated. */
export function passwdFile(users: readonly PasswdEntry[] = DEFAULT_USERS): string {
  return users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.gecos ?? ''}:${u.home}:${u.shell}\n`).join('');
}

/** Returns group(5) text for `groups` (default: the default groups). */
export function groupFile(groups: readonly GroupEntry[] = DEFAULT_GROUPS): string {
  return groups.map((g) => `${g.name}:x:${g.gid}:${g.members.join(',')}\n`).join('');
}

/** Returns an /etc/nsswitch.conf for a root with only files (no NIS, no systemd, no mDNS modules) plus DNS. */
export function nsswitchFile(): string {
  return [
    'passwd:         files',
    'group:          files',
    'shadow:         files',
    'gshadow:        files',
    '',
    'hosts:          files dns',
    'networks:       files',
    '',
    'protocols:      files',
    'services:       files',
    'ethers:         files',
    'rpc:            files',
    '',
  ].join('\n');
}

const ID = /^\d{1,10}$/;

/** Returns the id `s` spells (decimal, at most ID_MAX), or undefined. */
export function parseId(s: string): number | undefined {
  if (!ID.test(s)) return undefined;
  const n = Number(s);
  return n <= ID_MAX ? n : undefined;
}

/** Parses /etc/passwd text (passwd(5)); comments, blank and malformed lines are skipped, as getpwent does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === undefined || gid === undefined || f[0] === '') continue;
    out.push({ name: f[0]!, uid, gid, gecos: f[4]!, home: f[5]!, shell: f[6]! });
  }
  return out;
}

/** Parses /etc/group text (group(5)). */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = parseId(f[2]!);
    if (gid === undefined || f[0] === '') continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(',').filter(Boolean) });
  }
  return out;
}
