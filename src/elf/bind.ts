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
 * The definitions one object exports, as ld.so's lookup sees them: the acceptable definitions (defined, global, weak
 * or unique, of a data or code type) by a hash of their name bytes, over the object's own symbol table. Names are
 * compared as bytes (strcmp, as ld.so does) and never decoded: the loader keeps one index per library for a whole
 * audit, and decoding every library's names was a tenth of `pare audit`'s time.
 */
export interface ExportIndex {
  /** Name hash (nameHash) → index in `table` of the one definition with that hash, or of several. */
  readonly byHash: ReadonlyMap<number, number | readonly number[]>;
  readonly table: SymbolTable;
}

/**
 * Returns the export index of a dynamic symbol table (defined, global/weak/unique symbols of the allowed types).
 * `stored`, the file's DT_GNU_HASH values (ElfFile.gnuHashKeys), saves hashing the names it covers.
 */
export function exportIndex(
  t: SymbolTable,
  stored?: { readonly first: number; key(i: number): number },
): ExportIndex {
  const m = new Map<number, number | number[]>();
  for (let i = 0; i < t.count; i++) {
    const shndx = t.shndx(i);
    if (shndx === SHN.UNDEF || t.nameOffset(i) === 0) continue;
    const info = t.info(i);
    const bind = info >> 4;
    if (bind !== STB.GLOBAL && bind !== STB.WEAK && bind !== STB.GNU_UNIQUE) continue;
    const type = info & 0xf;
    if (!ALLOWED_TYPES.has(type)) continue;
    if (type !== STT.TLS && shndx !== SHN.ABS && t.valueIsZero(i)) continue;
    // An empty name (offset 0 was skipped above; a NUL at the offset is the other way).
    if (t.strings.raw[t.nameOffset(i)] === 0) continue;
    const h = stored && i >= stored.first ? stored.key(i) : t.nameHash(i);
    const prev = m.get(h);
    if (prev === undefined) m.set(h, i);
    else if (typeof prev === 'number') m.set(h, [prev, i]);
    else prev.push(i);
  }
  return { byHash: m, table: t };
}

/**
 * Returns the definition (an index into `ex.table`) that reference `r` of `refs` binds to in one object, or
 * undefined: matchDefinition over an ExportIndex.
 */
function bindIn(
  ex: ExportIndex,
  refs: SymbolTable,
  r: number,
  hash: number,
  wantVersion: string | undefined,
) {
  const hit = ex.byHash.get(hash);
  if (hit === undefined) return undefined;
  const t = ex.table;
  let single: number | undefined;
  let count = 0;
  for (const i of typeof hit === 'number' ? [hit] : hit) {
    if (!t.sameName(i, refs, r)) continue;
    const raw = t.versymRaw(i);
    const idx = raw & 0x7fff;
    if (wantVersion !== undefined) {
      if (!t.versioned) return i;
      if (idx > 1 && t.versionName(idx)?.name === wantVersion) return i;
      // Indexes 0 and 1 carry no version, so their hidden bit has no meaning (as in ElfSymbol.version).
      if (idx <= 1) return i;
      continue;
    }
    if (!t.versioned || idx < 3) return i;
    if ((raw & 0x8000) === 0 && count++ === 0) single = i;
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
          ? exportIndex(await program.dynamicSymbolTable(), await program.gnuHashKeys())
          : await loader.exportsOf(closure.objects[i]!),
    })),
  );
  const out: SymbolImport[] = [];
  for (let r = 0; r < refs.count; r++) {
    if (refs.shndx(r) !== SHN.UNDEF || refs.nameOffset(r) === 0) continue;
    const info = refs.info(r);
    if (info >> 4 === STB.LOCAL) continue;
    const hash = refs.nameHash(r);
    if (hash < 0) continue;
    const name = refs.name(r);
    const version = refs.versionName(refs.versionIndex(r))?.name;
    let provider: number | undefined;
    let providerVersion: string | undefined;
    for (const { i, ex } of scope) {
      const d = bindIn(ex, refs, r, hash, version);
      if (d !== undefined) {
        provider = i;
        providerVersion = ex.table.versionName(ex.table.versionIndex(d))?.name;
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
