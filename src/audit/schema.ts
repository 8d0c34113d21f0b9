/**
 * The JSON document `pare audit --json` prints and `auditRoot` returns: schema `pare.audit/v2` (v1 plus the image
 * sections: lint, classification, policy, image). Stable: fields are only ever added; a change in meaning gets a new
 * schema name. Documented field by field in src/audit/README.md.
 */
import type { Fact, FoundBy, Linkage, PieKind, Relro, SymbolKind } from '../elf/index.ts';
import type { Classification } from './classify.ts';
import type { ImageSummary } from './contents.ts';
import type { PackageOwner } from './dpkg.ts';
import type { LintFinding } from './lint.ts';
import type { PolicyResult } from './policy.ts';

export const AUDIT_SCHEMA = 'pare.audit/v2';

export interface AuditHardening {
  readonly relro: Fact<Relro>;
  readonly bindNow: Fact<boolean>;
  readonly canary: Fact<boolean>;
  readonly nx: Fact<boolean>;
  readonly pie: Fact<PieKind>;
  readonly linkage: Fact<Linkage>;
  readonly rpath: Fact<string | null>;
  readonly runpath: Fact<string | null>;
  readonly stripped: Fact<boolean>;
  readonly fortify: Fact<boolean> & {
    /** null when unknown: no libc of the file's architecture in the root and the file is not linked against glibc. */
    readonly fortified: number | null;
    readonly fortifiable: number | null;
    readonly protected: readonly string[];
    readonly unprotected: readonly string[];
  };
  readonly ibt: Fact<boolean | null>;
  readonly shstk: Fact<boolean | null>;
  readonly bti: Fact<boolean | null>;
  readonly pac: Fact<boolean | null>;
  readonly stackClash: Fact<'yes' | 'unknown'>;
}

export interface AuditLibrary {
  /** The DT_NEEDED name it was first requested by. */
  readonly name: string;
  /** The path ld.so opens (what ldd prints). */
  readonly path: string;
  /** Canonical path inside the root. */
  readonly realPath: string;
  readonly foundBy: FoundBy;
  /** Path of the object whose DT_NEEDED loaded it. */
  readonly neededBy: string;
  readonly package: PackageOwner | null;
}

export interface AuditImport {
  readonly name: string;
  readonly version: string | null;
  readonly kind: SymbolKind;
  readonly weak: boolean;
  /** Path (as ld.so opens it) of the object that provides the symbol; null when nothing in the closure does. */
  readonly library: string | null;
  readonly libraryVersion: string | null;
  /** Debian package of the providing object, when the root has dpkg metadata. */
  readonly package: string | null;
}

export interface AuditFile {
  /** Path inside the audited root. */
  readonly path: string;
  readonly size: number;
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  readonly machine: string;
  /** e_type: `EXEC`, `DYN`, `REL`, `CORE` or `type-<n>`. */
  readonly type: string;
  readonly interpreter: string | null;
  readonly soname: string | null;
  readonly needed: readonly string[];
  readonly buildId: string | null;
  /** The systemd `.note.package` metadata, when present. */
  readonly notePackage: Readonly<Record<string, unknown>> | null;
  /** The Debian package that installed the file (dpkg database of the root). */
  readonly package: PackageOwner | null;
  readonly hardening: AuditHardening;
  /** Loaded objects in load order (program excluded); null when closures were not computed. */
  readonly libraries: readonly AuditLibrary[] | null;
  /** DT_NEEDED names that no search found. */
  readonly missing: readonly string[];
  /** PT_INTERP path when the interpreter is missing from the root. */
  readonly missingInterpreter: string | null;
  /** Undefined dynamic symbols and who provides them; null when not computed. */
  readonly imports: readonly AuditImport[] | null;
  /** Global functions defined in `.symtab` of a static binary (what it linked in); empty otherwise. */
  readonly linkedFunctions: readonly string[];
  /** Requirements (from `--require`) this file does not meet, e.g. `relro=full`. */
  readonly violations: readonly string[];
}

export interface AuditError {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

export interface LintReport {
  /** Every finding, accepted ones included (`accepted: true`), in rule order then path. */
  readonly findings: readonly LintFinding[];
  readonly summary: {
    readonly fatal: number;
    readonly warn: number;
    readonly info: number;
    /** Findings accepted by --accept or the ignore file (not counted above). */
    readonly accepted: number;
    /** False when a fatal finding was not accepted. */
    readonly passed: boolean;
  };
}

export interface AuditReport {
  readonly schema: typeof AUDIT_SCHEMA;
  /** The root the paths are relative to (a host directory or an image name). */
  readonly root: string;
  /** The requirement spec that was checked, or null. */
  readonly require: string | null;
  /** ELF files, sorted by path. */
  readonly files: readonly AuditFile[];
  /** Files that start like ELF but could not be parsed (typed ElfError code and message); each fails a gate. */
  readonly errors: readonly AuditError[];
  /** Image lint (image targets only; absent for host paths and under --no-lint). */
  readonly lint?: LintReport;
  /** Image classification (image targets only, as lint). */
  readonly classification?: Classification;
  /** The `--policy` verdict (absent without --policy). */
  readonly policy?: PolicyResult;
  /** Layers and unpacked size by package and directory (image targets, JSON and HTML reports). */
  readonly image?: ImageSummary;
  readonly summary: {
    readonly files: number;
    readonly errors: number;
    readonly violations: number;
    readonly missingLibraries: number;
    /**
     * The `--require` verdict: true when every file was checked and none violates it, false when a file violates it
     * or could not be checked (an entry of `errors`), null without a gate.
     */
    readonly passed: boolean | null;
  };
}
