export { checkCommand } from './command.ts';
export type { NetworkHandle, PortMapping } from './network.ts';
export { connectNetwork, findPasta, formatPublish, parsePublish, pastaArgs } from './network.ts';
export type { PreparedRun, RunOptions, RunSource } from './prepare.ts';
export { checkPlatform, prepareRun, resolveRootfsUser } from './prepare.ts';
export type { HardenedPrintTarget, PrintOptions, PrintResult } from './print.ts';
export {
  dockerFlags,
  kubernetesPod,
  kubernetesSecretName,
  podName,
  printHardened,
  runnableReference,
  shellQuote,
} from './print.ts';
export type { RootLookup, TopLevelEntry } from './rootfs.ts';
export { listTopLevel, lookupInRoot, MAX_ROOT_FILE_SIZE, readFileInRoot } from './rootfs.ts';
export type {
  SandboxHandle,
  SandboxLayout,
  SandboxSpec,
  SandboxStdio,
  Secret,
  StartOptions,
} from './sandbox.ts';
export {
  bwrapArgs,
  checkVolumeTargets,
  DEFAULT_TMP_SIZE,
  hostSeccompArch,
  hostsFile,
  MAX_SECRET_SIZE,
  startSandbox,
} from './sandbox.ts';
export type { SeccompArch, SeccompRule, SockFilter } from './seccomp.ts';
export {
  AUDIT_ARCH,
  DEFAULT_RULES,
  encodeFilter,
  SYSCALLS,
  seccompArch,
  seccompFilter,
  seccompProgram,
} from './seccomp.ts';
export { openRunSource, resolveSourceUser } from './source.ts';
export type { ProcessOverrides, ProcessSpec, Volume } from './spec.ts';
export {
  DEFAULT_PATH,
  MAX_TMP_SIZE,
  parseEnvVar,
  parseSecret,
  parseSize,
  parseVolume,
  resolveProcess,
} from './spec.ts';
export type { HostProbe } from './support.ts';
export { checkSandboxSupport, hostProbe } from './support.ts';
export type { UnpackedRootfs, UnpackReport } from './unpack.ts';
export { materializeTree, rootfsCacheDir, unpackCached, unpackImage } from './unpack.ts';
export type { ExecUser, GroupEntry, PasswdEntry, UserDb } from './user.ts';
export { DEFAULT_GID, DEFAULT_UID, parseGroup, parsePasswd, resolveUser } from './user.ts';
