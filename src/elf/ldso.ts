/**
 * Library closure exactly as glibc's ld.so (2.36, Debian) computes it for a program inside a root filesystem:
 * breadth-first over DT_NEEDED (elf/dl-deps.c), each name looked up by _dl_map_object (elf/dl-load.c):
 *
 *   1. an object already loaded under that name, path or SONAME;
 *   2. a name with a slash is opened directly (after $ORIGIN/$LIB/$PLATFORM expansion);
 *   3. when the requesting object has no DT_RUNPATH: the DT_RPATH of the requester, then of the object that loaded
 *      it, and so on up to the executable;
 *   4. LD_LIBRARY_PATH (only when given in options; the environment of the audited program is unknown);
 *   5. the requester's own DT_RUNPATH;
 *   6. /etc/ld.so.cache, then the system directories (skipped when the requester has DF_1_NODEFLIB).
 *
 * Each directory is tried with the hwcaps subdirectories first (glibc-hwcaps/…, tls, platform). A candidate of the
 * wrong class, byte order or machine, or not ET_DYN, is skipped silently as open_verify does, and the search goes on.
 * A file reached by two names (symlinks, hardlinks) is one object, as ld.so compares st_dev/st_ino.
 * ld.so itself does not read /etc/ld.so.conf: only ldconfig does, when it writes the cache. With `ldconfig:
 * 'simulate'` and no cache in the root, the conf directories are searched in the order ldconfig would list them.
 */
import { ElfError } from '../errors.ts';
import { type ExportIndex, exportIndex } from './bind.ts';
import { DF_1, type DynamicInfo, type ElfFile, openElf } from './file.ts';
import { type ElfHeader, ET } from './header.ts';
import { HWCAP_EXTENSION, type LdCacheEntry, parseLdCache } from './ldcache.ts';
import type { RootFs } from './rootfs.ts';

export interface LoaderOptions {
  /** Value of $PLATFORM (AT_PLATFORM); default from the executable's machine (`x86_64`, `aarch64`, `i686` …). */
  readonly platform?: string;
  /** Value of $LIB; default Debian's `lib/<multiarch triplet>`. */
  readonly lib?: string;
  /**
   * Subdirectories tried inside every search directory before the directory itself, in priority order. The default
   * for x86-64 is what glibc 2.36 searches on an x86-64-v3 CPU (glibc-hwcaps/x86-64-v3, …-v2, tls/x86_64, …); the
   * runtime CPU of an image is not known, so this is an assumption. Other machines default to none.
   */
  readonly hwcapSubdirs?: readonly string[];
  /** LD_LIBRARY_PATH directories (default none). */
  readonly libraryPath?: readonly string[];
  /** `cache` (default): exactly ld.so; `simulate`: when the root has no ld.so.cache, use ld.so.conf as ldconfig would. */
  readonly ldconfig?: 'cache' | 'simulate';
  /**
   * Where the program's $ORIGIN comes from. `realpath` (default) is what the kernel gives ld.so on exec
   * (/proc/self/exe, every symlink resolved); `as-given` is what `ldd` / `ld.so --list PATH` use (the directory of
   * the path as typed), which differs for symlinked programs such as /usr/bin/java → /usr/lib/jvm/…/bin/java.
   */
  readonly programOrigin?: 'realpath' | 'as-given';
}

/** How an object was found. */
export type FoundBy =
  | 'main'
  | 'interpreter'
  | 'direct'
  | 'rpath'
  | 'library-path'
  | 'runpath'
  | 'ld.so.cache'
  | 'ld.so.conf'
  | 'default';

export interface LoadedObject {
  /** The name it was first requested by (DT_NEEDED text; the path for the executable and interpreter). */
  readonly name: string;
  /** The path ld.so opened (search directory + name): what ldd prints after `=>`. */
  readonly path: string;
  /** Canonical path inside the root after following symlinks. */
  readonly realPath: string;
  readonly foundBy: FoundBy;
  /** Index (in `objects`) of the object whose DT_NEEDED loaded this one; undefined for the executable and interpreter. */
  readonly loader: number | undefined;
  readonly soname: string | undefined;
  readonly needed: readonly string[];
}

export interface DependencyEdge {
  readonly from: number;
  readonly name: string;
  /** Index of the object the name resolved to, or undefined when it was not found. */
  readonly to: number | undefined;
}

export interface SkippedCandidate {
  readonly path: string;
  readonly reason: string;
}

/** The loaded-object graph of one program. */
export interface Closure {
  /** Objects in load order; [0] is the program. */
  readonly objects: readonly LoadedObject[];
  readonly edges: readonly DependencyEdge[];
  /** DT_NEEDED names that no search found, sorted, unique. */
  readonly missing: readonly string[];
  /** The PT_INTERP path when the interpreter itself is missing from the root. */
  readonly missingInterpreter: string | undefined;
  /** The symbol lookup scope (executable first, then breadth-first dependencies), as indexes into `objects`. */
  readonly searchList: readonly number[];
  /** Files that exist but were skipped (wrong class/machine, not ELF, unreadable), for diagnostics. */
  readonly skipped: readonly SkippedCandidate[];
}

const TRIPLETS: Readonly<Record<string, string>> = {
  'x86_64/64': 'x86_64-linux-gnu',
  'x86_64/32': 'x86_64-linux-gnux32',
  'i386/32': 'i386-linux-gnu',
  'aarch64/64': 'aarch64-linux-gnu',
  'arm/32': 'arm-linux-gnueabihf',
  'riscv/64': 'riscv64-linux-gnu',
  'ppc64/64': 'powerpc64le-linux-gnu',
  's390/64': 's390x-linux-gnu',
  'mips/32': 'mipsel-linux-gnu',
  'loongarch/64': 'loongarch64-linux-gnu',
};

/** Returns the Debian multiarch triplet of an ELF file (`x86_64-linux-gnu`, `aarch64-linux-gnu` …), or undefined. */
export function multiarchTriplet(f: ElfFile): string | undefined {
  const h = f.header;
  if (h.machineName === 'arm') return h.flags & 0x400 ? 'arm-linux-gnueabihf' : 'arm-linux-gnueabi';
  if (h.machineName === 'ppc64')
    return h.endian === 'little' ? 'powerpc64le-linux-gnu' : 'powerpc64-linux-gnu';
  return TRIPLETS[`${h.machineName}/${h.class}`];
}

const PLATFORMS: Readonly<Record<string, string>> = {
  x86_64: 'x86_64',
  i386: 'i686',
  aarch64: 'aarch64',
  arm: 'v7l',
  riscv: 'riscv64',
  ppc64: 'power9',
  s390: 'z14',
};

/** glibc 2.36 on an x86-64-v3 CPU (observed with LD_DEBUG=libs on Debian 12). */
const X86_64_SUBDIRS = [
  'glibc-hwcaps/x86-64-v3',
  'glibc-hwcaps/x86-64-v2',
  'tls/x86_64/x86_64',
  'tls/x86_64',
  'tls',
  'x86_64/x86_64',
  'x86_64',
];

/**
 * The ld.so.cache flag value ld.so accepts for a machine (_DL_CACHE_DEFAULT_ID in glibc's dl-cache.h files);
 * undefined means "any FLAG_ELF_LIBC6 entry", the file check then decides.
 */
function cacheFlags(f: ElfFile): number[] | undefined {
  const h = f.header;
  switch (h.machineName) {
    case 'x86_64':
      return h.class === 64 ? [0x0303] : [0x0803];
    case 'i386':
      return [0x0003, 0x0001];
    case 'aarch64':
      return [0x0a03];
    case 'arm':
      return h.flags & 0x400 ? [0x0903] : [0x0003, 0x0001];
    case 'riscv': {
      const abi = h.flags & 0x6;
      return abi === 0x4 ? [0x1003] : abi === 0 ? [0x0f03] : undefined;
    }
    case 'ppc64':
      return [0x0503];
    case 's390':
      return h.class === 64 ? [0x0403] : [0x0003, 0x0001];
    default:
      return undefined;
  }
}

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function normalize(p: string): string {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return `/${out.join('/')}`;
}

/**
 * Expands $ORIGIN, $LIB and $PLATFORM (also `${…}`) in one path element as _dl_dst_substitute does. Unknown `$NAME`
 * stays literal. Returns undefined when the element needs an origin that is not known.
 */
export function expandDst(
  s: string,
  vars: { origin: string | undefined; lib: string; platform: string },
): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '$') {
      out += ch;
      continue;
    }
    const rest = s.slice(i + 1);
    const m = /^(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))/.exec(rest);
    if (!m) {
      out += ch;
      continue;
    }
    const name = m[1] ?? m[2];
    const value = name === 'ORIGIN' ? vars.origin : name === 'LIB' ? vars.lib : vars.platform;
    if (value === undefined) return undefined;
    out += value;
    i += m[0].length;
  }
  return out;
}

/** What the loader keeps of a library between closures: its header and dynamic section, not the parsed file. */
interface Probe {
  readonly header: ElfHeader;
  readonly dynamic: DynamicInfo | undefined;
  /** Why the dynamic section could not be read; thrown when the object is loaded, as before the cache existed. */
  readonly dynamicError?: unknown;
}

interface Candidate {
  readonly probe: Probe;
  readonly realPath: string;
}

/** Most objects in one closure; a hostile tree of generated libraries cannot make the walk unbounded. */
export const MAX_CLOSURE_OBJECTS = 10_000;

/**
 * Resolves library closures inside one root. Keeps each library's header, dynamic section and (once asked for) export
 * index between calls, so auditing many programs of one root reads each library once; parsed files are not kept.
 */
export class Loader {
  readonly fs: RootFs;
  readonly options: LoaderOptions;
  readonly #probes = new Map<string, Promise<Probe | string>>();
  readonly #exports = new Map<string, Promise<ExportIndex>>();
  /** The opened program of each closure still referenced (concurrent closures each keep their own). */
  readonly #programs = new WeakMap<Closure, ElfFile>();
  #cache: Promise<LdCacheEntry[] | undefined> | undefined;
  #cacheByKey: Promise<Map<string, LdCacheEntry[]> | undefined> | undefined;
  #conf: Promise<string[]> | undefined;
  #main: { realPath: string; elf: ElfFile } | undefined;

  constructor(fs: RootFs, options: LoaderOptions = {}) {
    this.fs = fs;
    this.options = options;
  }

  /**
   * Returns the ELF file at canonical path `realPath`, opened afresh (headers read, the rest lazily), or a reason
   * string when it is not a readable ELF file. Never throws for bad files.
   */
  async elfAt(realPath: string): Promise<ElfFile | string> {
    try {
      const src = await this.fs.open(realPath);
      if (!src) return 'not a regular file';
      return await openElf(src, realPath);
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** Header and dynamic section of the file at `realPath` (cached), or a reason string; never throws for bad files. */
  #probe(realPath: string): Promise<Probe | string> {
    let hit = this.#probes.get(realPath);
    if (!hit) {
      hit = (async () => {
        const elf = await this.elfAt(realPath);
        if (typeof elf === 'string') return elf;
        try {
          // Only shared objects of the right kind are used (see verify); others need no dynamic section.
          const dynamic = elf.header.type === ET.DYN ? await elf.dynamic() : undefined;
          return { header: elf.header, dynamic };
        } catch (e) {
          return { header: elf.header, dynamic: undefined, dynamicError: e };
        }
      })();
      this.#probes.set(realPath, hit);
    }
    return hit;
  }

  /**
   * Returns the export index (defined dynamic symbols by name, as ld.so's lookup sees them) of a closure object.
   * Cached per library; the program's is built from its open file. Throws ElfError for a malformed symbol table.
   */
  exportsOf(o: LoadedObject): Promise<ExportIndex> {
    if (o.foundBy === 'main' && this.#main?.realPath === o.realPath)
      return (async (f: ElfFile) => exportIndex(await f.dynamicSymbolTable(), await f.gnuHashKeys()))(
        this.#main.elf,
      );
    let hit = this.#exports.get(o.realPath);
    if (!hit) {
      // Detached: the index outlives the file, and its views would otherwise keep whole read pages alive.
      hit = this.elfOf(o).then(async (f) =>
        exportIndex((await f.dynamicSymbolTable()).detached(), await f.gnuHashKeys()),
      );
      this.#exports.set(o.realPath, hit);
    }
    return hit;
  }

  /** Returns the root's ld.so.cache entries, or undefined when it has none. Throws ELF_CACHE_INVALID for a corrupt one. */
  ldCache(littleEndian = true): Promise<LdCacheEntry[] | undefined> {
    this.#cache ??= (async () => {
      const st = await this.fs.stat('/etc/ld.so.cache');
      if (st?.kind !== 'file') return undefined;
      const src = (await this.fs.open(st.path))!;
      const bytes = await src.read(0, src.size);
      return parseLdCache(bytes, `${this.fs.name}:/etc/ld.so.cache`, littleEndian);
    })();
    return this.#cache;
  }

  /** The ld.so.cache entries by key, each list in cache order (the search looks up one name many times per run). */
  #cacheIndex(littleEndian: boolean): Promise<Map<string, LdCacheEntry[]> | undefined> {
    this.#cacheByKey ??= this.ldCache(littleEndian).then((entries) => {
      if (!entries) return undefined;
      const m = new Map<string, LdCacheEntry[]>();
      for (const e of entries) {
        const list = m.get(e.key);
        if (list) list.push(e);
        else m.set(e.key, [e]);
      }
      return m;
    });
    return this.#cacheByKey;
  }

  /** Returns the directories listed by the root's /etc/ld.so.conf, following `include` globs, in order. */
  ldConf(): Promise<string[]> {
    this.#conf ??= readLdConf(this.fs);
    return this.#conf;
  }

  /**
   * Computes the closure of the program at `path` (inside the root). Throws ElfError when the program itself is not
   * ELF. `program`, when given, is that file already opened (it is then not read again).
   */
  async closure(path: string, program?: ElfFile): Promise<Closure> {
    const st = await this.fs.stat(path);
    if (st?.kind !== 'file')
      throw new ElfError(
        'ELF_IO',
        `cannot open ${JSON.stringify(path)} in ${JSON.stringify(this.fs.name)}: no regular file there`,
        { file: path },
      );
    // Parsed directly (not through the cache) so a malformed program surfaces its typed ElfError.
    // Not kept in the file cache: programs are audited once, libraries are shared between closures.
    const mainElf = program ?? (await openElf((await this.fs.open(st.path))!, path));
    this.#main = { realPath: st.path, elf: mainElf };
    const h = mainElf.header;
    const triplet = multiarchTriplet(mainElf);
    const vars = {
      lib: this.options.lib ?? (triplet ? `lib/${triplet}` : 'lib'),
      platform: this.options.platform ?? PLATFORMS[h.machineName] ?? h.machineName,
    };
    const subdirs =
      this.options.hwcapSubdirs ?? (h.machineName === 'x86_64' && h.class === 64 ? X86_64_SUBDIRS : []);
    const systemDirs = triplet
      ? [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib']
      : ['/lib', '/usr/lib'];
    const flagsOk = cacheFlags(mainElf);

    const objects: (LoadedObject & {
      names: Set<string>;
      origin: string;
      rpath?: string;
      runpath?: string;
      flags1: number;
    })[] = [];
    const edges: DependencyEdge[] = [];
    const missing = new Set<string>();
    const skipped: SkippedCandidate[] = [];
    const byReal = new Map<string, number>();

    const verify = async (p: string): Promise<Candidate | undefined> => {
      let s: Awaited<ReturnType<RootFs['stat']>>;
      try {
        s = await this.fs.stat(p);
      } catch (e) {
        skipped.push({ path: p, reason: (e as Error).message });
        return undefined;
      }
      if (s?.kind !== 'file') return undefined;
      const probe = await this.#probe(s.path);
      if (typeof probe === 'string') {
        skipped.push({ path: p, reason: probe });
        return undefined;
      }
      const eh = probe.header;
      if (eh.class !== h.class || eh.endian !== h.endian || eh.machine !== h.machine) {
        skipped.push({ path: p, reason: `wrong ELF class/machine (${eh.machineName}/${eh.class})` });
        return undefined;
      }
      if (eh.type !== ET.DYN || (eh.osabi !== 0 && eh.osabi !== 3)) {
        skipped.push({
          path: p,
          reason: `not a loadable shared object (e_type ${eh.type}, OSABI ${eh.osabi})`,
        });
        return undefined;
      }
      return { probe, realPath: s.path };
    };

    const add = async (
      name: string,
      path: string,
      c: Candidate,
      foundBy: FoundBy,
      loader: number | undefined,
    ): Promise<number> => {
      if (c.probe.dynamicError !== undefined) throw c.probe.dynamicError;
      const dyn = c.probe.dynamic;
      const i = objects.length;
      if (i >= MAX_CLOSURE_OBJECTS)
        throw new ElfError(
          'ELF_LIMIT',
          `cannot resolve libraries of ${JSON.stringify(path)}: more than ${MAX_CLOSURE_OBJECTS} objects`,
          { file: path },
        );
      objects.push({
        name,
        path,
        realPath: c.realPath,
        foundBy,
        loader,
        soname: dyn?.soname,
        needed: dyn?.needed ?? [],
        names: new Set([name, path]),
        // ld.so: the executable's origin comes from the kernel (/proc/self/exe, symlinks resolved); a library's from
        // the path it was opened by (_dl_new_object keeps realname as found).
        origin:
          foundBy === 'main' && this.options.programOrigin !== 'as-given'
            ? dirname(c.realPath)
            : dirname(path),
        ...(dyn?.rpath !== undefined ? { rpath: dyn.rpath } : {}),
        ...(dyn?.runpath !== undefined ? { runpath: dyn.runpath } : {}),
        flags1: dyn?.flags1 ?? 0,
      });
      byReal.set(c.realPath, i);
      return i;
    };

    const expandList = (list: string | undefined, origin: string): string[] => {
      if (list === undefined) return [];
      const out: string[] = [];
      for (const el of list.split(':')) {
        const x = expandDst(el, { ...vars, origin });
        // Relative and empty elements are relative to the process's working directory, unknown here: skipped.
        if (x === undefined || !x.startsWith('/')) continue;
        out.push(normalize(x));
      }
      return out;
    };

    const inDirs = async (
      dirs: readonly string[],
      name: string,
    ): Promise<{ path: string; c: Candidate } | undefined> => {
      for (const d of dirs) {
        const tried = new Set<string>();
        for (const sub of [...subdirs, '']) {
          const p = normalize(sub ? `${d}/${sub}/${name}` : `${d}/${name}`);
          if (tried.has(p)) continue;
          tried.add(p);
          const c = await verify(p);
          if (c) return { path: sub ? p : `${d === '/' ? '' : d}/${name}`, c };
        }
      }
      return undefined;
    };

    const search = async (
      name: string,
      from: number,
    ): Promise<{ path: string; c: Candidate; how: FoundBy } | undefined> => {
      const req = objects[from]!;
      if (name.includes('/')) {
        const x = expandDst(name, { ...vars, origin: req.origin });
        if (x === undefined || !x.startsWith('/')) return undefined;
        const c = await verify(normalize(x));
        return c ? { path: x, c, how: 'direct' } : undefined;
      }
      if (req.runpath === undefined) {
        for (let l: number | undefined = from; l !== undefined; l = objects[l]!.loader) {
          const o = objects[l]!;
          const r = await inDirs(expandList(o.rpath, o.origin), name);
          if (r) return { ...r, how: 'rpath' };
        }
      }
      if (this.options.libraryPath) {
        const r = await inDirs(this.options.libraryPath, name);
        if (r) return { ...r, how: 'library-path' };
      }
      const rr = await inDirs(expandList(req.runpath, req.origin), name);
      if (rr) return { ...rr, how: 'runpath' };
      if (req.flags1 & DF_1.NODEFLIB) return undefined;
      const cache = await this.#cacheIndex(h.endian === 'little');
      if (cache) {
        // search_cache: entries are sorted by name; the first one with acceptable flags wins. glibc-hwcaps entries
        // (hwcap extension bit) and legacy hwcap-specific entries depend on the CPU and are not used.
        for (const e of cache.get(name) ?? []) {
          if (e.hwcap !== 0n || (e.hwcap & HWCAP_EXTENSION) !== 0n) continue;
          if (flagsOk ? !flagsOk.includes(e.flags) : (e.flags & 0xff) !== 3) continue;
          const c = await verify(e.value);
          if (c) return { path: e.value, c, how: 'ld.so.cache' };
          break;
        }
      } else if (this.options.ldconfig === 'simulate') {
        const r = await inDirs([...(await this.ldConf()), ...systemDirs], name);
        if (r) return { ...r, how: 'ld.so.conf' };
      }
      const rd = await inDirs(systemDirs, name);
      return rd ? { ...rd, how: 'default' } : undefined;
    };

    await add(
      path,
      path,
      { probe: { header: mainElf.header, dynamic: await mainElf.dynamic() }, realPath: st.path },
      'main',
      undefined,
    );
    let missingInterpreter: string | undefined;
    const interp = await mainElf.interpreter();
    if (interp !== undefined) {
      const c = await verify(interp);
      if (!c) missingInterpreter = interp;
      else if (c.realPath !== st.path) await add(interp, interp, c, 'interpreter', undefined);
    }

    const queue = [0];
    while (queue.length > 0) {
      const from = queue.shift()!;
      for (const name of objects[from]!.needed) {
        let to = objects.findIndex((o) => o.names.has(name) || o.soname === name);
        if (to >= 0) {
          edges.push({ from, name, to });
          continue;
        }
        if (missing.has(name)) {
          edges.push({ from, name, to: undefined });
          continue;
        }
        const r = await search(name, from);
        if (!r) {
          missing.add(name);
          edges.push({ from, name, to: undefined });
          continue;
        }
        const same = byReal.get(r.c.realPath);
        if (same !== undefined) {
          objects[same]!.names.add(name);
          edges.push({ from, name, to: same });
          continue;
        }
        to = await add(name, r.path, r.c, r.how, from);
        queue.push(to);
        edges.push({ from, name, to });
      }
    }

    // The lookup scope is the executable followed by its dependencies breadth-first (l_searchlist).
    const searchList: number[] = [0];
    const seen = new Set([0]);
    for (let k = 0; k < searchList.length; k++) {
      for (const e of edges) {
        if (e.from === searchList[k] && e.to !== undefined && !seen.has(e.to)) {
          seen.add(e.to);
          searchList.push(e.to);
        }
      }
    }
    const result: Closure = {
      objects: objects.map(({ names: _n, origin: _o, rpath: _r, runpath: _rp, flags1: _f, ...o }) => o),
      edges,
      missing: [...missing].sort(),
      missingInterpreter,
      searchList,
      skipped,
    };
    this.#programs.set(result, mainElf);
    return result;
  }

  /** Returns the opened program file of a closure this loader computed (undefined for other closures). */
  programOf(c: Closure): ElfFile | undefined {
    return this.#programs.get(c);
  }

  /** Returns the ELF file of a closure object: the program of the last `closure`, other objects opened afresh. */
  async elfOf(o: LoadedObject): Promise<ElfFile> {
    if (o.foundBy === 'main' && this.#main?.realPath === o.realPath) return this.#main.elf;
    const f = await this.elfAt(o.realPath);
    if (typeof f === 'string') throw new Error(f);
    return f;
  }
}

/** Most ld.so.conf files read (include globs can fan out). */
const MAX_CONF_FILES = 1024;

/**
 * Returns the directories of /etc/ld.so.conf in ldconfig's order: lines in order, `include` globs expanded and sorted
 * (glob(3) order), comments and `hwcap` lines ignored, each file read once (include loops are cut).
 */
export async function readLdConf(fs: RootFs, file = '/etc/ld.so.conf'): Promise<string[]> {
  const dirs: string[] = [];
  const seen = new Set<string>();
  const readOne = async (p: string): Promise<void> => {
    const st = await fs.stat(p);
    if (st?.kind !== 'file' || seen.has(st.path) || seen.size >= MAX_CONF_FILES) return;
    seen.add(st.path);
    const src = (await fs.open(st.path))!;
    const text = Buffer.from(await src.read(0, Math.min(src.size, 1 << 20))).toString('utf8');
    for (let line of text.split('\n')) {
      line = line.replace(/#.*/, '').trim();
      if (!line) continue;
      const inc = /^include\s+(.+)$/.exec(line);
      if (inc) {
        for (const pat of inc[1]!.split(/\s+/)) {
          const abs = pat.startsWith('/') ? pat : `${dirname(p)}/${pat}`;
          for (const m of await glob(fs, abs)) await readOne(m);
        }
        continue;
      }
      if (/^hwcap\s/.test(line)) continue;
      // ldconfig accepts "dir=type" and whitespace/comma separated lists.
      for (const d of line.split(/[\s,:]+/)) {
        const dir = normalize(d.replace(/=.*$/, ''));
        if (d && !dirs.includes(dir)) dirs.push(dir);
      }
    }
  };
  await readOne(file);
  return dirs;
}

/** Expands a glob with `*`, `?` and `[…]` in the last component only (what ld.so.conf uses), sorted. */
async function glob(fs: RootFs, pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  const base = pattern.slice(pattern.lastIndexOf('/') + 1);
  if (!/[*?[]/.test(base)) return [pattern];
  const re = new RegExp(
    `^${base
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  );
  const names = (await fs.list(dir)).map((e) => e.name).filter((n) => !n.startsWith('.') && re.test(n));
  return names.sort().map((n) => `${dir}/${n}`);
}
