/**
 * Which library provides each symbol a program imports, decided as ld.so binds (elf/dl-lookup.c do_lookup_x and
 * check_match): the global scope is searched in order (executable, then dependencies breadth-first), and the first
 * object with an acceptable definition wins. A definition is acceptable when it is defined, global/weak/unique, of a
 * data or code type, and its version fits: a versioned reference needs that version name (or an unversioned,
 * non-hidden definition); an unversioned reference takes a definition of version index < 3, else the one non-hidden
 * versioned definition if there is exactly one.
 */
import { type ElfFile, type ElfSymbol, SHN, STB, STT, type SymbolTable } from './file.ts';
import type { Closure, Loader } from './ldso.ts';

export type SymbolKind = 'func' | 'object' | 'tls' | 'notype' | 'ifunc' | 'common' | 'other';

export interface SymbolImport {
  readonly name: string;
  /** The version the reference asks for (from verneed), if any. */
  readonly version: string | undefined;
  readonly kind: SymbolKind;
  readonly weak: boolean;
  /** Index into `closure.objects` of the providing object, or undefined when nothing defines it. */
  readonly provider: number | undefined;
  /** The version of the definition that was bound. */
  readonly providerVersion: string | undefined;
}

function kindOf(t: number): SymbolKind {
  switch (t) {
    case STT.FUNC:
      return 'func';
    case STT.OBJECT:
      return 'object';
    case STT.TLS:
      return 'tls';
    case STT.NOTYPE:
      return 'notype';
    case STT.GNU_IFUNC:
      return 'ifunc';
    case STT.COMMON:
      return 'common';
    default:
      return 'other';
  }
}

const ALLOWED_TYPES = new Set<number>([STT.NOTYPE, STT.OBJECT, STT.FUNC, STT.COMMON, STT.TLS, STT.GNU_IFUNC]);

/**
 * The definitions one object exports, as ld.so's lookup sees them: acceptable definitions by name, each as its raw
 * versym entry (index | 0x8000 hidden bit), with the version names beside. Compact on purpose: the loader keeps one
 * per library for a whole audit, and parsed symbol objects of every library were most of its memory.
 */
export interface ExportIndex {
  /** Name → versym entry of its one definition, or the entries of several (`sym@V1`, `sym@@V2`). */
  readonly byName: ReadonlyMap<string, number | readonly number[]>;
  /** Some symbol of the object has a version index above 0 (ld.so's `num_versions != 0`). */
  readonly versioned: boolean;
  /** Version names by index (indexes 0 and 1 have none). */
  readonly versionNames: readonly (string | undefined)[];
}

/** Returns the export index of a dynamic symbol table (defined, global/weak/unique symbols of the allowed types). */
export function exportIndex(t: SymbolTable): ExportIndex {
  const m = new Map<string, number | number[]>();
  const versionNames: (string | undefined)[] = [];
  for (let i = 0; i < t.count; i++) {
    const shndx = t.shndx(i);
    if (shndx === SHN.UNDEF || t.nameOffset(i) === 0) continue;
    const info = t.info(i);
    const bind = info >> 4;
    if (bind !== STB.GLOBAL && bind !== STB.WEAK && bind !== STB.GNU_UNIQUE) continue;
    const type = info & 0xf;
    if (!ALLOWED_TYPES.has(type)) continue;
    if (type !== STT.TLS && shndx !== SHN.ABS && t.valueIsZero(i)) continue;
    const name = t.name(i);
    if (name === '') continue;
    const raw = t.versymRaw(i);
    const idx = raw & 0x7fff;
    if (idx > 1 && versionNames[idx] === undefined) versionNames[idx] = t.versionName(idx)?.name;
    const prev = m.get(name);
    if (prev === undefined) m.set(name, raw);
    else if (typeof prev === 'number') m.set(name, [prev, raw]);
    else prev.push(raw);
  }
  return { byName: m, versioned: t.versioned, versionNames };
}

/**
 * Returns the versym entry of the definition in `defs` a reference binds to, or undefined: matchDefinition over an
 * ExportIndex entry.
 */
function matchIndexed(
  defs: number | readonly number[],
  ex: ExportIndex,
  wantVersion: string | undefined,
): number | undefined {
  let single: number | undefined;
  let count = 0;
  const list = typeof defs === 'number' ? [defs] : defs;
  for (const raw of list) {
    const idx = raw & 0x7fff;
    // Indexes 0 and 1 carry no version, so their hidden bit has no meaning (as in ElfSymbol.version).
    const hidden = idx > 1 && (raw & 0x8000) !== 0;
    if (wantVersion !== undefined) {
      if (!ex.versioned) return raw;
      if (idx > 1 && ex.versionNames[idx] === wantVersion) return raw;
      if (idx <= 1) return raw;
      continue;
    }
    if (!ex.versioned || idx < 3) return raw;
    if (!hidden && count++ === 0) single = raw;
  }
  return count === 1 ? single : undefined;
}

/** Returns the definition in one object that a reference binds to, or undefined (check_match + num_versions rule). */
export function matchDefinition(
  defs: readonly ElfSymbol[],
  versioned: boolean,
  ref: ElfSymbol,
): ElfSymbol | undefined {
  const want = ref.version;
  let single: ElfSymbol | undefined;
  let count = 0;
  for (const d of defs) {
    if (want) {
      if (!versioned) return d;
      if (d.version?.name === want.name) return d;
      if (d.versionIndex <= 1 && !d.version?.hidden) return d;
      continue;
    }
    if (!versioned || d.versionIndex < 3) return d;
    if (!d.version?.hidden && count++ === 0) single = d;
  }
  return count === 1 ? single : undefined;
}

/**
 * Returns every symbol object `objectIndex` of `closure` imports (undefined dynamic symbols with a name), each with
 * the object that provides it. Sorted by name then version.
 */
export async function resolveImports(
  loader: Loader,
  closure: Closure,
  objectIndex = 0,
): Promise<SymbolImport[]> {
  const program = loader.programOf(closure);
  const fileOf = (i: number) =>
    i === 0 && program ? Promise.resolve(program) : loader.elfOf(closure.objects[i]!);
  const refs = await (await fileOf(objectIndex)).dynamicSymbolTable();
  const scope = await Promise.all(
    closure.searchList.map(async (i) => ({
      i,
      // The program's index is built here and not cached: programs are audited once, libraries are shared.
      ex:
        i === 0 && program
          ? exportIndex(await program.dynamicSymbolTable())
          : await loader.exportsOf(closure.objects[i]!),
    })),
  );
  const out: SymbolImport[] = [];
  for (let r = 0; r < refs.count; r++) {
    if (refs.shndx(r) !== SHN.UNDEF || refs.nameOffset(r) === 0) continue;
    const info = refs.info(r);
    if (info >> 4 === STB.LOCAL) continue;
    const name = refs.name(r);
    if (name === '') continue;
    const version = refs.versionName(refs.versionIndex(r))?.name;
    let provider: number | undefined;
    let providerVersion: string | undefined;
    for (const { i, ex } of scope) {
      const defs = ex.byName.get(name);
      if (defs === undefined) continue;
      const d = matchIndexed(defs, ex, version);
      if (d !== undefined) {
        provider = i;
        const idx = d & 0x7fff;
        providerVersion = idx > 1 ? ex.versionNames[idx] : undefined;
        break;
      }
    }
    out.push({
      name,
      version,
      kind: kindOf(info & 0xf),
      weak: info >> 4 === STB.WEAK,
      provider,
      providerVersion,
    });
  }
  return out.sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : (a.version ?? '') < (b.version ?? '') ? -1 : 1,
  );
}

/** Returns the global function names defined in `.symtab` (what a static binary linked in), sorted; [] when stripped. */
export async function linkedFunctions(f: ElfFile): Promise<string[]> {
  const syms = await f.symbolTable();
  if (!syms) return [];
  const names = new Set<string>();
  for (const s of syms) {
    if (s.shndx === SHN.UNDEF || (s.type !== STT.FUNC && s.type !== STT.GNU_IFUNC)) continue;
    if (s.bind !== STB.GLOBAL && s.bind !== STB.WEAK) continue;
    names.add(s.name);
  }
  return [...names].sort();
}
