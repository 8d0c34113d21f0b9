// Public API of the Debian module. Explicit named exports only; each engineer appends their section.

// — versions, relations, resolution, .deb reading, rootfs assembly —
export type { ArMember } from './ar.ts';
export { readAr } from './ar.ts';
export type { Assembled, AssembleOptions } from './assemble.ts';
export { assembleRootfs, statusStanza } from './assemble.ts';
export { CA_BUNDLE, caCertificatesConf, caTrustEntries, pemLinkName } from './cacerts.ts';
export type { DebCompression, DebPackage, ReadDebOptions } from './deb.ts';
export { MAX_CONTROL_TAR, MAX_DATA_TAR, parseConffiles, parseMd5sums, readDeb, readDebFile } from './deb.ts';
export { groupFile, NOBODY_ID, NONROOT_HOME, NONROOT_ID, nsswitchFile, passwdFile } from './passwd.ts';
export type { Alternatives, ParseRelationsOptions, Relation } from './relation.ts';
export {
  archMatches,
  formatAlternatives,
  formatRelation,
  parseProvides,
  parseRelations,
  reduceRelations,
} from './relation.ts';
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
