export type { GroupEntry, PasswdEntry } from './accounts.ts';
export {
  DEFAULT_GROUPS,
  DEFAULT_USERS,
  groupFile,
  ID_MAX,
  NOBODY_ID,
  NOLOGIN,
  NONROOT_HOME,
  NONROOT_ID,
  nsswitchFile,
  parseGroup,
  parseId,
  parsePasswd,
  passwdFile,
} from './accounts.ts';
