import { ID_MAX, NONROOT_ID, parseGroup, parseId, parsePasswd } from '../accounts/index.ts';
import { RunError } from '../errors.ts';

export type { GroupEntry, PasswdEntry } from '../accounts/index.ts';
export { parseGroup, parsePasswd } from '../accounts/index.ts';

/**
 * The user a container runs as: `user[:group]` with names or numbers, resolved through the image's own /etc/passwd
 * and /etc/group the way docker does (moby/sys/user GetExecUser), with one deliberate difference: a numeric uid that
 * is not in /etc/passwd gets gid = uid, not gid 0 (root's group is never granted implicitly).
 */

/** Default uid and gid when neither the image nor the caller names a user: distroless's "nonroot". */
export const DEFAULT_UID = NONROOT_ID;
export const DEFAULT_GID = NONROOT_ID;

/** The resolved identity. */
export interface ExecUser {
  readonly uid: number;
  readonly gid: number;
  /** Home directory from /etc/passwd, `/` when the user has no entry (docker's default HOME). */
  readonly home: string;
  /** Where the identity came from, for messages: `default`, `image`, or `option`. */
  readonly source: 'default' | 'image' | 'option';
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
      `cannot use user ${JSON.stringify(spec)}: uid ${u} is above ${ID_MAX}`,
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
      throw new RunError('RUN_USER_INVALID', `cannot use group ${JSON.stringify(g)}: gid is above ${ID_MAX}`);
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
