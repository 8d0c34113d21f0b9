export { splitCommand } from './argv.ts';
export type { DpkgPackage, DpkgSummary } from './dpkg.ts';
export { DPKG_STATUS, dpkgOwners, readDpkgStatus, trimDpkg } from './dpkg.ts';
export type { SlimOptions, SlimResult } from './slim.ts';
export { PROBES_ANNOTATION, slimImage } from './slim.ts';
