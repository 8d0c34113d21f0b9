export { idsFromTree, minimalBase } from './base.ts';
export type { BuildOptions, BuildResult } from './build.ts';
export { build, resolveEpoch, runConfig } from './build.ts';
export type { DebianBuildOptions, DebianPlan } from './debian.ts';
export { debianArch, debianSource, planDebian } from './debian.ts';
export type { IdResolver } from './files.ts';
export { checkSymlinkLoops, filesTree, ownerResolver } from './files.ts';
export type { BuildRecords, BuildRecordsOptions, RootfsFacts } from './records.ts';
export { PARE_VERSION, provenanceInput, writeBuildRecords } from './records.ts';
