/**
 * Which library provides each symbol a program imports, decided as ld.so binds (elf/dl-lookup.c do_lookup_x and
 * check_match): the global scope is searched in order (executable, then dependencies breadth-first), and the first
 * object with an acceptable definition wins. A definition is acceptable when it is defined, global/weak/unique, of a
 * data or code type, and its version fits: a versioned reference needs that version name (or an unversioned,
 * non-hidden definition); an unversioned reference takes a definition of version index < 3, else the one non-hidden
 * versioned definition if there is exactly one.
 */
import { type ElfFile, type ElfSymbol, SHN, STB, STT } from './file.ts';
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

interface ExportIndex {
  readonly byName: ReadonlyMap<string, readonly ElfSymbol[]>;
  readonly versioned: boolean;
}
const indexes = new WeakMap<ElfFile, Promise<ExportIndex>>();

/** Returns the defined dynamic symbols of `f` by name (cached per file). */
function exportsOf(f: ElfFile): Promise<ExportIndex> {
  let hit = indexes.get(f);
  if (!hit) {
    hit = (async () => {
      const m = new Map<string, ElfSymbol[]>();
      let versioned = false;
      for (const s of await f.dynamicSymbols()) {
        if (s.versionIndex > 0) versioned = true;
        if (s.shndx === SHN.UNDEF || s.name === '') continue;
        if (s.bind !== STB.GLOBAL && s.bind !== STB.WEAK && s.bind !== STB.GNU_UNIQUE) continue;
        if (!ALLOWED_TYPES.has(s.type)) continue;
        if (s.value === 0n && s.shndx !== SHN.ABS && s.type !== STT.TLS) continue;
        const list = m.get(s.name);
        if (list) list.push(s);
        else m.set(s.name, [s]);
      }
      return { byName: m, versioned };
    })();
    indexes.set(f, hit);
  }
  return hit;
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
  const self = await loader.elfOf(closure.objects[objectIndex]!);
  const scope = await Promise.all(
    closure.searchList.map(async (i) => ({
      i,
      ex: await exportsOf(await loader.elfOf(closure.objects[i]!)),
    })),
  );
  const out: SymbolImport[] = [];
  for (const ref of await self.dynamicSymbols()) {
    if (ref.shndx !== SHN.UNDEF || ref.name === '' || ref.bind === STB.LOCAL) continue;
    let provider: number | undefined;
    let providerVersion: string | undefined;
    for (const { i, ex } of scope) {
      const defs = ex.byName.get(ref.name);
      if (!defs) continue;
      const d = matchDefinition(defs, ex.versioned, ref);
      if (d) {
        provider = i;
        providerVersion = d.version?.name;
        break;
      }
    }
    out.push({
      name: ref.name,
      version: ref.version?.name,
      kind: kindOf(ref.type),
      weak: ref.bind === STB.WEAK,
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
