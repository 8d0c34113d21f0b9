export type { InstalledPackage } from './packages.ts';
export { readInstalled, SLICED_FIELD } from './packages.ts';
export type { ProbeContext, ProbeOptions, Prober } from './probe.ts';
export { findStrace, straceArgs, straceProber } from './probe.ts';
export type { SliceReport } from './report.ts';
export {
  formatSliceSummary,
  formatWhyKept,
  parseSliceReport,
  SLICE_REPORT_VERSION,
  sliceReport,
} from './report.ts';
export { denied, localeWanted, pythonExcluded } from './rules.ts';
export type {
  PackageSummary,
  Reason,
  SliceOptions,
  SliceResult,
  SliceRoot,
  SliceTotals,
  Why,
} from './slice.ts';
export { sliceTree } from './slice.ts';
export { decodeStraceString, parseStraceLog } from './strace.ts';
export type { Walk } from './walk.ts';
export { canonicalName, walk } from './walk.ts';
