export { splitCommand } from './argv.ts';
export type { DpkgPackage, DpkgSummary } from './dpkg.ts';
export { DPKG_STATUS, dpkgOwners, readDpkgStatus, trimDpkg } from './dpkg.ts';
export type { HttpProbe, HttpTrace, HttpTraceOptions } from './http.ts';
export { parseHttpProbe, resolveHttpPorts, STOP_GRACE_MS, stopSignal, traceHttp } from './http.ts';
export type { SlimOptions, SlimResult } from './slim.ts';
export {
  HTTP_PROBES_ANNOTATION,
  PROBES_ANNOTATION,
  probeContext,
  slimImage,
  withHttpProbes,
} from './slim.ts';
