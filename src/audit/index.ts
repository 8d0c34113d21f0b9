export type { AuditOptions, SymbolUser } from './audit.ts';
export { auditRoot, auditTree, symbolUsers } from './audit.ts';
export type { PackageOwner } from './dpkg.ts';
export { DpkgIndex } from './dpkg.ts';
export type { TableOptions } from './render.ts';
export { renderTable, renderUsers } from './render.ts';
export type { Requirement } from './require.ts';
export { parseRequirements, REQUIREMENT_NAMES, violations } from './require.ts';
export type {
  AuditError,
  AuditFile,
  AuditHardening,
  AuditImport,
  AuditLibrary,
  AuditReport,
} from './schema.ts';
export { AUDIT_SCHEMA } from './schema.ts';
