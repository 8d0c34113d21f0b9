import {
  type Closure,
  type ElfFile,
  ET,
  type FortifyList,
  fortifyListOf,
  glibcFortifyList,
  glibcReleaseNeeded,
  hardeningFacts,
  Loader,
  type LoaderOptions,
  linkedFunctions,
  multiarchTriplet,
  NO_FORTIFY_LIST,
  openElf,
  type RootFs,
  resolveImports,
  treeRootFs,
  unknownFortifyList,
} from '../elf/index.ts';
import { isPareError, UsageError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import { DpkgIndex } from './dpkg.ts';
import { parseRequirements, type Requirement, violations } from './require.ts';
import {
  AUDIT_SCHEMA,
  type AuditError,
  type AuditFile,
  type AuditImport,
  type AuditLibrary,
  type AuditReport,
} from './schema.ts';

export interface AuditOptions {
  /** Paths inside the root to audit (files or directories, walked recursively); default the whole root. */
  readonly paths?: readonly string[];
  /** Directories not walked (default /proc, /sys, /dev: virtual file systems on a host root). */
  readonly exclude?: readonly string[];
  /** Compute library closures (default true). */
  readonly closure?: boolean;
  /** Resolve imported symbols to their providers (default true; needs closure). */
  readonly imports?: boolean;
  /** Attribute files and libraries to Debian packages from the root's dpkg database (default true). */
  readonly packages?: boolean;
  /** Scan executable code for stack-clash probes (default true). */
  readonly scanCode?: boolean;
  /** A `--require` spec such as `relro=full,pie,nx,canary`. */
  readonly require?: string;
  readonly loader?: LoaderOptions;
  /**
   * Files analysed at once: default 16 (analysis waits on reads), or 1 when the root reads synchronously (a host
   * directory), where more would only hold more files' buffers at once (peak RSS ~200 -> ~175 MB on /usr/bin).
   */
  readonly concurrency?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const TYPES: Readonly<Record<number, string>> = { 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };
function isElfMagic(b: Uint8Array): boolean {
  return b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

/** Returns what a file that is not ELF is, from its first bytes, for a message ("a script for /bin/sh"). */
export function describeNotElf(head: Uint8Array, size: number): string {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (size === 0) return 'an empty file';
  if (b[0] === 0x23 && b[1] === 0x21) {
    const line = b
      .toString('latin1', 2, Math.max(2, b.indexOf(0x0a) < 0 ? b.length : b.indexOf(0x0a)))
      .trim();
    return `a script for ${JSON.stringify(line.split(/\s+/, 1)[0] ?? '')}`;
  }
  if (b.toString('latin1', 0, 8) === '!<arch>\n') return 'an ar archive (a static library or a .deb)';
  if (b.toString('latin1', 257, 262) === 'ustar') return 'a tar archive';
  if (b[0] === 0x1f && b[1] === 0x8b) return 'a gzip file';
  const hex = [...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  return `a file of ${size} bytes starting with ${hex} (ELF starts with 7f 45 4c 46)`;
}

/**
 * Walks regular files under `paths` (symlinks are not followed; each file once), sorted. A path named in `paths`
 * must exist and be a file or a directory: anything else is bad input (fail closed, never an empty report).
 */
async function walk(fs: RootFs, paths: readonly string[], exclude: ReadonlySet<string>): Promise<string[]> {
  const out = new Set<string>();
  const visit = async (p: string, depth: number): Promise<void> => {
    if (exclude.has(p) || depth > 256) return;
    const st = await fs.stat(p);
    if (depth === 0 && st?.kind !== 'file' && st?.kind !== 'dir')
      throw new UsageError(
        st ? 'INPUT_INVALID' : 'INPUT_NOT_FOUND',
        `cannot audit ${JSON.stringify(p)} in ${JSON.stringify(fs.name)}: ${st ? 'not a regular file or directory' : 'no such file or directory'}`,
        { file: p },
      );
    if (st?.kind === 'file') {
      out.add(p);
      return;
    }
    if (st?.kind !== 'dir') return;
    for (const e of await fs.list(p)) {
      const child = p === '/' ? `/${e.name}` : `${p}/${e.name}`;
      if (e.kind === 'file') out.add(child);
      else if (e.kind === 'dir') await visit(child, depth + 1);
    }
  };
  for (const p of paths) await visit(p, 0);
  return [...out].sort();
}

/**
 * Audits every ELF file under `options.paths` of a root filesystem: hardening facts (checksec semantics, with
 * evidence), library closure as ld.so resolves it inside the root, imported symbols with the library and Debian
 * package that provides each, and `--require` violations. Files that are not ELF are skipped; ELF files that do not
 * parse (a truncated one included) are listed in `errors` with their ElfError code, and fail a gate
 * (`summary.passed`). Does not throw for bad files found by walking; throws UsageError USAGE for a bad `require`
 * spec, INPUT_NOT_FOUND / INPUT_INVALID when a path named in `paths` is missing, not a file or directory, or a file
 * that is not ELF (a script, an ar archive, an empty file: the message says which), and ELF_CACHE_INVALID for a
 * corrupt ld.so.cache.
 */
export async function auditRoot(fs: RootFs, options: AuditOptions = {}): Promise<AuditReport> {
  const reqs: Requirement[] = options.require ? parseRequirements(options.require) : [];
  const loader = new Loader(fs, options.loader);
  const dpkg = options.packages === false ? undefined : new DpkgIndex(fs);
  const named = options.paths ?? ['/'];
  const paths = await walk(fs, named, new Set(options.exclude ?? ['/proc', '/sys', '/dev']));
  // A file named by the caller that is not ELF is not skipped: auditing it would be an empty report that passes.
  for (const p of named) {
    if ((await fs.stat(p))?.kind !== 'file') continue;
    const src = await fs.open(p);
    const head = src && src.size > 0 ? await src.read(0, Math.min(src.size, 512)) : new Uint8Array();
    if (src && src.size >= 4 && isElfMagic(head)) continue;
    throw new UsageError(
      'INPUT_INVALID',
      `cannot audit ${JSON.stringify(p)}: it is ${describeNotElf(head, src?.size ?? 0)}, not an ELF file; audit the ELF files it runs or contains`,
      { file: p },
    );
  }
  const fortifyLists = new Map<string, Promise<FortifyList | undefined>>();
  // The root's libc of the file's architecture (checksec's list), else glibc's built-in list for the release the file
  // was linked against (the newest GLIBC_x.y it needs or defines), else unknown: never an empty list, whose 0/0 would
  // read as "nothing to fortify".
  const fortifyFor = async (f: ElfFile): Promise<FortifyList> => {
    const libc = await rootLibcList(f);
    if (libc) return libc;
    const where = `no libc.so.6 of ${f.header.machineName} (ELF${f.header.class}) under ${JSON.stringify(fs.name)}`;
    const release = glibcReleaseNeeded([
      ...(await f.versionNeeds()),
      // glibc's own objects (ld.so, libm, …) define GLIBC_x.y versions rather than need them.
      ...(await f.versionDefinitions()).map((d) => ({ versions: d.names.map((name) => ({ name })) })),
    ]);
    if (release !== undefined) return glibcFallback(where, release);
    // The counts are over dynamic symbols: without any (a static binary), every list gives 0 of 0, truthfully.
    if ((await f.dynamicSymbolTable()).count <= 1) return NO_FORTIFY_LIST;
    return unknownFortifyList(`${where}, and the file needs no GLIBC_ version`);
  };
  const fallbacks = new Map<string, FortifyList>();
  const glibcFallback = (where: string, release: string): FortifyList => {
    const key = `${where} ${release}`;
    let hit = fallbacks.get(key);
    if (!hit) {
      const list = glibcFortifyList(release);
      hit = { ...list, source: `${list.source}, the newest the file names (${where})` };
      fallbacks.set(key, hit);
    }
    return hit;
  };
  const rootLibcList = (f: ElfFile): Promise<FortifyList | undefined> => {
    const triplet = multiarchTriplet(f) ?? f.header.machineName;
    let hit = fortifyLists.get(triplet);
    if (!hit) {
      hit = (async () => {
        for (const p of [
          `/lib/${triplet}/libc.so.6`,
          `/usr/lib/${triplet}/libc.so.6`,
          '/lib/libc.so.6',
          '/lib64/libc.so.6',
          '/usr/lib/libc.so.6',
        ]) {
          const st = await fs.stat(p).catch(() => undefined);
          if (st?.kind !== 'file') continue;
          const libc = await loader.elfAt(st.path);
          if (
            typeof libc === 'string' ||
            libc.header.machine !== f.header.machine ||
            libc.header.class !== f.header.class
          )
            continue;
          return fortifyListOf(libc);
        }
        return undefined;
      })();
      fortifyLists.set(triplet, hit);
    }
    return hit;
  };
  // Package owners are looked up in one batch after every file is analysed (DpkgIndex.ownersOf); until then each
  // record notes the canonical path whose owner it needs.
  // Plain records, not closures: a closure would keep the whole analysis context of its file (buffers, the parsed
  // file) alive until the end of the run.
  type OwnerWanted =
    | { realPath: string; file: Mutable<AuditFile> }
    | { realPath: string; lib: Mutable<AuditLibrary> }
    | { realPath: string; imports: Mutable<AuditImport>[] };
  const ownerWanted: OwnerWanted[] = [];
  const owner = (w: OwnerWanted): void => {
    if (dpkg) ownerWanted.push(w);
  };

  const files: AuditFile[] = [];
  const errors: AuditError[] = [];
  const one = async (path: string): Promise<void> => {
    const src = await fs.open(path);
    // Anything that starts with the magic is parsed, however short: a truncated ELF file is an error, not skipped.
    if (!src || src.size < 4) return;
    if (!isElfMagic(await src.read(0, 4))) return;
    try {
      const elf = await openElf(src, path);
      const st = await fs.stat(path);
      const dyn = await elf.dynamic();
      const notes = await elf.notes();
      const hardening = await hardeningFacts(elf, await fortifyFor(elf), {
        scanCode: options.scanCode ?? true,
      });
      let closure: Closure | undefined;
      let libraries: AuditLibrary[] | null = null;
      let imports: AuditImport[] | null = null;
      if (
        options.closure !== false &&
        elf.header.type !== ET.REL &&
        (dyn?.needed.length || (await elf.interpreter()) !== undefined)
      ) {
        closure = await loader.closure(path, elf);
        const c = closure;
        // The edge that first reached each object (the one that loaded it).
        const firstEdge = new Map<number, number>();
        for (const e of c.edges) if (e.to !== undefined && !firstEdge.has(e.to)) firstEdge.set(e.to, e.from);
        const libs: Mutable<AuditLibrary>[] = [];
        for (let k = 1; k < c.objects.length; k++) {
          const o = c.objects[k]!;
          const from = firstEdge.get(k);
          const lib: Mutable<AuditLibrary> = {
            name: o.name,
            path: o.path,
            realPath: o.realPath,
            foundBy: o.foundBy,
            neededBy: from !== undefined ? c.objects[from]!.path : path,
            package: null,
          };
          owner({ realPath: o.realPath, lib });
          libs.push(lib);
        }
        libraries = libs;
        if (options.imports !== false) {
          const imps: Mutable<AuditImport>[] = [];
          const byLib = new Map<string, Mutable<AuditImport>[]>();
          for (const i of await resolveImports(loader, c)) {
            const lib = i.provider !== undefined ? c.objects[i.provider]! : undefined;
            const imp: Mutable<AuditImport> = {
              name: i.name,
              version: i.version ?? null,
              kind: i.kind,
              weak: i.weak,
              library: lib ? (i.provider === 0 ? path : lib.path) : null,
              libraryVersion: i.providerVersion ?? null,
              package: null,
            };
            if (lib) {
              const same = byLib.get(lib.realPath);
              if (same) same.push(imp);
              else byLib.set(lib.realPath, [imp]);
            }
            imps.push(imp);
          }
          for (const [realPath, same] of byLib) owner({ realPath, imports: same });
          imports = imps;
        }
      }
      const file: Mutable<AuditFile> = {
        path,
        size: src.size,
        class: elf.header.class,
        endian: elf.header.endian,
        machine: elf.header.machineName,
        type: TYPES[elf.header.type] ?? `type-${elf.header.type}`,
        interpreter: (await elf.interpreter()) ?? null,
        soname: dyn?.soname ?? null,
        needed: dyn?.needed ?? [],
        buildId: notes.buildId ?? null,
        notePackage: notes.package ?? null,
        package: null,
        hardening,
        libraries,
        missing: closure?.missing ?? [],
        missingInterpreter: closure?.missingInterpreter ?? null,
        imports,
        linkedFunctions:
          hardening.linkage.value === 'static' || hardening.linkage.value === 'static-pie'
            ? await linkedFunctions(elf)
            : [],
        violations: violations(hardening, reqs),
      };
      if (st) owner({ realPath: st.path, file });
      files.push(file);
    } catch (e) {
      if (!isPareError(e)) throw e;
      errors.push({ path, code: e.code, message: e.message });
    }
  };
  const queue = [...paths];
  const workers = Array.from(
    { length: Math.max(1, options.concurrency ?? (fs.synchronous ? 1 : 16)) },
    async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) await one(p);
    },
  );
  await Promise.all(workers);
  if (dpkg && ownerWanted.length > 0) {
    const owners = await dpkg.ownersOf(ownerWanted.map((w) => w.realPath));
    for (const w of ownerWanted) {
      const o = owners.get(w.realPath) ?? null;
      if ('file' in w) w.file.package = o;
      else if ('lib' in w) w.lib.package = o;
      else for (const imp of w.imports) imp.package = o?.package ?? null;
    }
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  errors.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const violating = files.filter((f) => f.violations.length > 0).length;
  return {
    schema: AUDIT_SCHEMA,
    root: fs.name,
    require: options.require ?? null,
    files,
    errors,
    summary: {
      files: files.length,
      errors: errors.length,
      violations: violating,
      missingLibraries: files.filter((f) => f.missing.length > 0 || f.missingInterpreter).length,
      // A file the gate could not check fails it, as a violation does.
      passed: reqs.length === 0 ? null : violating === 0 && errors.length === 0,
    },
  };
}

/** Audits an FsTree (an image's root filesystem); see auditRoot. */
export function auditTree(tree: Tree, options: AuditOptions & { name?: string } = {}): Promise<AuditReport> {
  return auditRoot(treeRootFs(tree, options.name ?? 'tree'), options);
}

/** One binary that uses a symbol, for `pare audit --uses`. */
export interface SymbolUser {
  readonly path: string;
  readonly symbol: string;
  readonly version: string | null;
  /** The library providing it (or `(static)` when linked in, `(unresolved)` when nothing provides it). */
  readonly library: string;
  readonly package: string | null;
}

/**
 * Returns the files of `report` that import `symbol` (optionally `name@VERSION`) or linked it in statically, sorted
 * by path.
 */
export function symbolUsers(report: AuditReport, symbol: string): SymbolUser[] {
  const [name, version] = symbol.split('@', 2) as [string, string | undefined];
  const out: SymbolUser[] = [];
  for (const f of report.files) {
    for (const i of f.imports ?? []) {
      if (i.name !== name || (version !== undefined && i.version !== version)) continue;
      out.push({
        path: f.path,
        symbol: i.name,
        version: i.version,
        library: i.library ?? '(unresolved)',
        package: i.package,
      });
    }
    if (version === undefined && f.linkedFunctions.includes(name))
      out.push({
        path: f.path,
        symbol: name,
        version: null,
        library: '(static)',
        package: f.package?.package ?? null,
      });
  }
  return out;
}
