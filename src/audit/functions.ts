/**
 * The function-usage report (`pare audit --functions`): for each library, which of its functions are imported and by
 * which files; for each package, which library functions its files import; and the functions static binaries linked
 * in (from `.symtab`, where present). Built from the audit report's `imports` and `linkedFunctions`: the Spartan
 * argument that a CVE in a library function does not apply when no binary of the image calls it.
 */
import { comparePaths } from '../fstree/index.ts';
import type { AuditReport } from './schema.ts';

export const FUNCTIONS_SCHEMA = 'pare.audit.functions/v1';

export interface UsedFunction {
  readonly name: string;
  /** Symbol version (`GLIBC_2.34`), or null when unversioned. */
  readonly version: string | null;
  /** Files that import it, sorted. */
  readonly users: readonly string[];
}

export interface LibraryUsage {
  /** Path of the providing object as ld.so opens it. */
  readonly library: string;
  /** Its Debian package and version (dpkg database of the root), or null. */
  readonly package: string | null;
  readonly packageVersion: string | null;
  /** Files that import anything from it, sorted. */
  readonly users: readonly string[];
  readonly functions: readonly UsedFunction[];
}

export interface PackageUsage {
  /** The package of the importing files, or `(no package)`. */
  readonly package: string;
  readonly version: string | null;
  readonly files: readonly string[];
  /** What these files import, per library. */
  readonly imports: readonly { readonly library: string; readonly functions: readonly string[] }[];
}

export interface StaticUsage {
  readonly path: string;
  readonly package: string | null;
  /** Global functions defined in its `.symtab`. */
  readonly functions: readonly string[];
}

export interface FunctionReport {
  readonly schema: typeof FUNCTIONS_SCHEMA;
  readonly root: string;
  /** Sorted by library path; functions by name then version. */
  readonly libraries: readonly LibraryUsage[];
  /** Functions nothing in a file's closure defines (library `null` in the report), with their users. */
  readonly unresolved: readonly UsedFunction[];
  /** Sorted by package name. */
  readonly packages: readonly PackageUsage[];
  /** Static binaries with a symbol table, sorted by path. */
  readonly static: readonly StaticUsage[];
}

/** Imports that are code: functions (also indirect, and untyped undefined symbols); data and TLS are not. */
function isFunction(kind: string): boolean {
  return kind === 'func' || kind === 'ifunc' || kind === 'notype';
}

const key = (name: string, version: string | null) => (version === null ? name : `${name}@${version}`);
const byNameVersion = (a: UsedFunction, b: UsedFunction) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : (a.version ?? '') < (b.version ?? '') ? -1 : 1;

/**
 * Returns the function-usage report of an audit report (computed with imports: `--json`, `--uses` or `--functions`
 * runs). Throws nothing: a report without imports (closure disabled) yields empty library lists.
 */
export function functionUsage(report: AuditReport): FunctionReport {
  type Fn = { name: string; version: string | null; users: Set<string> };
  const libs = new Map<
    string,
    { pkg: string | null; ver: string | null; users: Set<string>; fns: Map<string, Fn> }
  >();
  const unresolved = new Map<string, Fn>();
  const pkgs = new Map<
    string,
    { version: string | null; files: Set<string>; imports: Map<string, Set<string>> }
  >();
  const statics: StaticUsage[] = [];
  const add = (m: Map<string, Fn>, name: string, version: string | null, user: string) => {
    const k = key(name, version);
    const f = m.get(k) ?? { name, version, users: new Set<string>() };
    f.users.add(user);
    m.set(k, f);
  };
  for (const f of report.files) {
    const owners = new Map((f.libraries ?? []).map((l) => [l.path, l.package]));
    const pkgName = f.package?.package ?? '(no package)';
    let pkg = pkgs.get(pkgName);
    for (const i of f.imports ?? []) {
      if (!isFunction(i.kind)) continue;
      if (i.library === null) {
        add(unresolved, i.name, i.version, f.path);
        continue;
      }
      let lib = libs.get(i.library);
      if (!lib) {
        const owner = owners.get(i.library) ?? null;
        lib = {
          pkg: owner?.package ?? i.package,
          ver: owner?.version ?? null,
          users: new Set(),
          fns: new Map(),
        };
        libs.set(i.library, lib);
      }
      lib.users.add(f.path);
      add(lib.fns, i.name, i.version, f.path);
      if (!pkg) {
        pkg = { version: f.package?.version ?? null, files: new Set(), imports: new Map() };
        pkgs.set(pkgName, pkg);
      }
      pkg.files.add(f.path);
      const names = pkg.imports.get(i.library) ?? new Set<string>();
      names.add(key(i.name, i.version));
      pkg.imports.set(i.library, names);
    }
    if (f.linkedFunctions.length > 0)
      statics.push({
        path: f.path,
        package: f.package?.package ?? null,
        functions: [...f.linkedFunctions].sort(),
      });
  }
  const fnList = (m: Map<string, Fn>): UsedFunction[] =>
    [...m.values()]
      .map((f) => ({ name: f.name, version: f.version, users: [...f.users].sort(comparePaths) }))
      .sort(byNameVersion);
  return {
    schema: FUNCTIONS_SCHEMA,
    root: report.root,
    libraries: [...libs]
      .sort(([a], [b]) => comparePaths(a, b))
      .map(([library, l]) => ({
        library,
        package: l.pkg,
        packageVersion: l.ver,
        users: [...l.users].sort(comparePaths),
        functions: fnList(l.fns),
      })),
    unresolved: fnList(unresolved),
    packages: [...pkgs]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([pkg, p]) => ({
        package: pkg,
        version: p.version,
        files: [...p.files].sort(comparePaths),
        imports: [...p.imports]
          .sort(([a], [b]) => comparePaths(a, b))
          .map(([library, names]) => ({ library, functions: [...names].sort() })),
      })),
    static: statics.sort((a, b) => comparePaths(a.path, b.path)),
  };
}

/** How many users a table line names before it says `(+N)`. */
const SHOWN_USERS = 3;

/** The function-usage report as text: one block per library, one line per function with its users. */
export function renderFunctions(r: FunctionReport): string {
  const users = (u: readonly string[]) =>
    u.length <= SHOWN_USERS
      ? u.join(', ')
      : `${u.slice(0, SHOWN_USERS).join(', ')} (+${u.length - SHOWN_USERS})`;
  const lines: string[] = [];
  for (const l of r.libraries) {
    const pkg = l.package ? ` (${l.package}${l.packageVersion ? ` ${l.packageVersion}` : ''})` : '';
    lines.push(
      `LIBRARY ${l.library}${pkg}: ${l.functions.length} function${l.functions.length === 1 ? '' : 's'} used by ${l.users.length} file${l.users.length === 1 ? '' : 's'}`,
    );
    const w = Math.max(...l.functions.map((f) => key(f.name, f.version).length));
    for (const f of l.functions) lines.push(`  ${key(f.name, f.version).padEnd(w)}  ${users(f.users)}`);
  }
  if (r.unresolved.length > 0) {
    lines.push('UNRESOLVED (no library in the closure defines them)');
    for (const f of r.unresolved) lines.push(`  ${key(f.name, f.version)}  ${users(f.users)}`);
  }
  if (r.packages.length > 0) {
    lines.push('', 'BY PACKAGE');
    for (const p of r.packages) {
      const n = p.imports.reduce((a, i) => a + i.functions.length, 0);
      lines.push(
        `  ${p.package}${p.version ? ` ${p.version}` : ''}: ${p.files.length} file${p.files.length === 1 ? '' : 's'}, ${n} imported function${n === 1 ? '' : 's'} from ${p.imports.map((i) => i.library).join(', ')}`,
      );
    }
  }
  for (const s of r.static)
    lines.push(
      '',
      `STATIC ${s.path}${s.package ? ` (${s.package})` : ''}: ${s.functions.length} linked function${s.functions.length === 1 ? '' : 's'}`,
      `  ${s.functions.join(' ')}`,
    );
  if (lines.length === 0) lines.push('no imported or linked functions');
  return `${lines.join('\n')}\n`;
}
