// Public API of the Debian module. Explicit named exports only; each engineer appends their section.

// — versions, relations, resolution, .deb reading, rootfs assembly —
export type { ArMember } from './ar.ts';
export { readAr } from './ar.ts';
// — archive access: mirror + keys, secure-apt chain, download cache, lockfile —
export type {
  ArchiveOptions,
  DebFile,
  DownloadProgress,
  SuiteState,
} from './archive.ts';
export { DebianArchive, formatSnapshot, openArchive, snapshotDate } from './archive.ts';
export type { Assembled, AssembleOptions } from './assemble.ts';
export { assembleRootfs, statusStanza } from './assemble.ts';
export { CA_BUNDLE, caCertificatesConf, caTrustEntries, pemLinkName } from './cacerts.ts';
export type { ByteCounter, RemoteBlobs } from './cache.ts';
export { DownloadCache, defaultCacheDir, hashFile } from './cache.ts';
export type { ChangelogEntry, ChangelogSince } from './changelog.ts';
export {
  changelogDate,
  changelogSince,
  changelogTrailerDate,
  cveIds,
  MAX_CHANGELOG_HEAD,
  MAX_CHANGELOG_TEXT,
  parseChangelog,
  readChangelog,
} from './changelog.ts';
export type { ControlErrorCode, Paragraph } from './control.ts';
export { ControlError, formatControl, iterateControl, parseControl } from './control.ts';
export type { DebCompression, DebPackage, ReadDebOptions } from './deb.ts';
export { MAX_CONTROL_TAR, MAX_DATA_TAR, parseConffiles, parseMd5sums, readDeb, readDebFile } from './deb.ts';
export type { Fetch, FetchResponse, HttpOptions } from './download.ts';
export { mapLimit } from './download.ts';
export type { Keyring, KeyringOptions } from './keyring.ts';
export { loadKeyring, SYSTEM_KEYRINGS } from './keyring.ts';
export type { LockChange, LockedBase, LockedPackage, LockedSuite, LockFile } from './lock.ts';
export {
  assertLockSatisfied,
  createLock,
  diffLocks,
  fetchLockedPackages,
  formatLock,
  LOCK_VERSION,
  lockedRecord,
  parseLock,
  readLock,
  writeLock,
} from './lock.ts';
export type { AptSourceEntry, ArchiveSuite, DebianSource, MirrorOptions } from './mirror.ts';
export { parseDeb822Sources, parseOneLineSources, readAptSources, resolveSuites } from './mirror.ts';
export type { InstalledPackages, OutdatedPackage, OutdatedReport } from './outdated.ts';
export { findOutdated, outdatedSource } from './outdated.ts';
export type { IndexOrigin, PackageRecord } from './packages.ts';
export {
  detachRecord,
  INDEX_FIELDS,
  IndexScanner,
  isSafePoolPath,
  parsePackages,
  scanPackages,
} from './packages.ts';
export type { Alternatives, ParseRelationsOptions, Relation } from './relation.ts';
export {
  archMatches,
  formatAlternatives,
  formatRelation,
  parseProvides,
  parseRelations,
  reduceRelations,
} from './relation.ts';
export type { Release, ReleaseCheck, ReleaseFile } from './release.ts';
export {
  checkRelease,
  parseRelease,
  parseReleaseDate,
  verifyClearsigned,
  verifyDetached,
} from './release.ts';
export type {
  ChainLink,
  IndexedPackage,
  MultiArch,
  PackageSource,
  Resolution,
  ResolvedPackage,
  ResolveOptions,
  UniverseOptions,
} from './resolve.ts';
export { PackageUniverse, resolveDependencies } from './resolve.ts';
export type { UsrAlias } from './usrmerge.ts';
export { canonicalUsrPath, mergeUsr, usrMergedDirs } from './usrmerge.ts';
export type { Version, VersionOp } from './version.ts';
export {
  compareFragments,
  compareVersions,
  formatVersion,
  parseVersion,
  parseVersionOp,
  satisfiesVersion,
} from './version.ts';
