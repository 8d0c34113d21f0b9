import { RunError } from '../errors.ts';

/**
 * The user a container runs as: `user[:group]` with names or numbers, resolved through the image's own /etc/passwd
 * and /etc/group the way docker does (moby/sys/user GetExecUser), with one deliberate difference: a numeric uid that
 * is not in /etc/passwd gets gid = uid, not gid 0 (root's group is never granted implicitly).
 */

/** Default uid and gid when neither the image nor the caller names a user: distroless's "nonroot". */
export const DEFAULT_UID = 65532;
export const DEFAULT_GID = 65532;
/** Highest id a user namespace can map ((uid_t)-1 is "no id"). */
export const MAX_ID = 0xfffffffe;

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}
export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** The resolved identity. */
export interface ExecUser {
  readonly uid: number;
  readonly gid: number;
  /** Home directory from /etc/passwd, `/` when the user has no entry (docker's default HOME). */
  readonly home: string;
  /** Where the identity came from, for messages: `default`, `image`, or `option`. */
  readonly source: 'default' | 'image' | 'option';
}

const ID = /^\d{1,10}$/;

function parseId(s: string): number | undefined {
  if (!ID.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
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
    out.push({ name: f[0]!, uid, gid, home: f[5]!, shell: f[6]! });
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

/** Files the user is resolved through (absent files behave as empty ones). */
export interface UserDb {
  readonly passwd?: string;
  readonly group?: string;
}

/**
 * Returns the uid, gid and home for `spec` (`user`, `uid`, `user:group`, `uid:gid`, any mix). An empty or undefined
 * spec gives DEFAULT_UID:DEFAULT_GID. Throws RUN_USER_INVALID for a malformed spec and RUN_USER_NOT_FOUND for a name
 * the image does not define.
 */
export function resolveUser(
  spec: string | undefined,
  db: UserDb,
  source: 'image' | 'option' = 'option',
): ExecUser {
  if (spec === undefined || spec === '')
    return { uid: DEFAULT_UID, gid: DEFAULT_GID, home: '/', source: 'default' };
  const parts = spec.split(':');
  if (parts.length > 2 || parts[0] === '' || parts[1] === '') {
    throw new RunError(
      'RUN_USER_INVALID',
      `cannot use user ${JSON.stringify(spec)}: want user[:group] (names or numbers)`,
    );
  }
  const [u, g] = parts as [string, string | undefined];
  const passwd = parsePasswd(db.passwd ?? '');
  const groups = parseGroup(db.group ?? '');
  const numeric = parseId(u);
  if (numeric === undefined && /^\d+$/.test(u)) {
    throw new RunError(
      'RUN_USER_INVALID',
      `cannot use user ${JSON.stringify(spec)}: uid ${u} is above ${MAX_ID}`,
    );
  }
  const pw = numeric !== undefined ? passwd.find((p) => p.uid === numeric) : passwd.find((p) => p.name === u);
  if (numeric === undefined && !pw) {
    throw new RunError(
      'RUN_USER_NOT_FOUND',
      `cannot use user ${JSON.stringify(u)}: the image's /etc/passwd has no such user; use a numeric uid or add the user to the image`,
    );
  }
  const uid = numeric ?? pw!.uid;
  let gid = pw?.gid ?? uid;
  if (g !== undefined) {
    const ng = parseId(g);
    if (ng === undefined && /^\d+$/.test(g)) {
      throw new RunError('RUN_USER_INVALID', `cannot use group ${JSON.stringify(g)}: gid is above ${MAX_ID}`);
    }
    if (ng !== undefined) gid = ng;
    else {
      const gr = groups.find((x) => x.name === g);
      if (!gr) {
        throw new RunError(
          'RUN_USER_NOT_FOUND',
          `cannot use group ${JSON.stringify(g)}: the image's /etc/group has no such group; use a numeric gid`,
        );
      }
      gid = gr.gid;
    }
  }
  return { uid, gid, home: pw?.home || '/', source };
}
