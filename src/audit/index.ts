export type { AuditOptions, SymbolUser } from './audit.ts';
export { auditRoot, auditTree, symbolUsers } from './audit.ts';
export type { Classification, ImageClass } from './classify.ts';
export { classifyImage, entrypointProgram } from './classify.ts';
export type { ImageLayer, ImageSummary, SizeGroup } from './contents.ts';
export { NO_PACKAGE, sizeDirectory, summarizeImage } from './contents.ts';
export type { DiffInput, DiffLayer, FileChange, FileFacts, FirstDifference, ImageDiff } from './diff.ts';
export { DIFF_SCHEMA, diffImages, renderDiff } from './diff.ts';
export type { PackageOwner } from './dpkg.ts';
export { DpkgIndex } from './dpkg.ts';
export type { FunctionReport, LibraryUsage, PackageUsage, StaticUsage, UsedFunction } from './functions.ts';
export { FUNCTIONS_SCHEMA, functionUsage, renderFunctions } from './functions.ts';
export { escapeHtml, renderHtml, squarify } from './html.ts';
export type {
  Acceptance,
  LintConfig,
  LintEvidence,
  LintFinding,
  LintInput,
  LintRule,
  Severity,
} from './lint.ts';
export {
  LINT_RULES,
  lintImage,
  lintRuleNames,
  lintSummary,
  parseAcceptance,
  parseIgnoreFile,
  secretInContent,
} from './lint.ts';
export type { Policy, PolicyResult, PolicyViolation } from './policy.ts';
export {
  baselineKeys,
  checkPolicy,
  lintKey,
  parsePolicy,
  policyNeedsCodeScan,
  policySchema,
  treeSize,
} from './policy.ts';
export type { TableOptions } from './render.ts';
export { renderLint, renderPolicy, renderTable, renderUsers } from './render.ts';
export type { Requirement } from './require.ts';
export { parseRequirements, REQUIREMENT_NAMES, violations } from './require.ts';
export { sarifRuleId, toSarif } from './sarif.ts';
export type {
  AuditError,
  AuditFile,
  AuditHardening,
  AuditImport,
  AuditLibrary,
  AuditReport,
  LintReport,
} from './schema.ts';
export { AUDIT_SCHEMA } from './schema.ts';
