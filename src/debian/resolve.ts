import { DebianError } from '../errors.ts';
import { Paragraph } from './control.ts';
import {
  type Alternatives,
  formatAlternatives,
  formatRelation,
  parseProvides,
  parseRelations,
  type Relation,
} from './relation.ts';
import { compareVersions, parseVersion, satisfiesVersion, type Version } from './version.ts';

/**
 * Dependency resolution over one or more Packages indexes, the way `apt-get install` resolves with an empty dpkg
 * status and `APT::Install-Recommends=false`:
 *
 * - Only the candidate of each package is installable: the highest version across all indexes (so a security
 *   update wins over the release), ties going to the index listed first. A request may pin `name=version`.
 * - Requested packages are marked first; then each one's Pre-Depends and Depends are walked depth-first in field
 *   order. An OR-group already satisfied by a selected package is left alone ("prefer already-selected"); otherwise
 *   its alternatives are tried in order, each alternative's real package before its providers, providers ordered as
 *   apt's CompareProviders orders them (Essential, `Protected`/`Important`, native architecture, Priority, then name
 *   for a deterministic tie-break). An alternative that fails (conflict, nothing satisfiable below it) is rolled back
 *   and the next one is tried.
 * - Versioned Provides satisfy versioned dependencies; unversioned ones only unversioned dependencies (Policy §7.5).
 * - Multi-Arch (Debian wiki: Multiarch/Implementation): an unqualified dependency wants the depender's
 *   architecture (`all` counts as native) or a `Multi-Arch: foreign` package; `:any` wants `Multi-Arch: allowed` (or
 *   foreign); `:native` and `:<arch>` name the architecture. Two architectures of one package need `Multi-Arch: same`.
 * - Conflicts and Breaks are honoured both ways, against real and virtual names (a package never conflicts with
 *   itself through what it provides).
 * - Nothing is pulled implicitly: not Essential, not `Priority: required` (distroless style: what is asked + deps).
 *
 * Pure: takes parsed paragraphs, returns a value. No I/O.
 */

/**
 * An index entry that knows its name, version, architecture and Provides without its paragraph (a PackageRecord):
 * the universe then reads the paragraph only of the packages the resolver looks at.
 */
export interface IndexEntry {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly provides: string | undefined;
  readonly paragraph: Paragraph;
}

/** A Packages index: its paragraphs (or records) and where they came from (`bookworm`, `bookworm-security`). */
export interface PackageSource {
  readonly suite: string;
  readonly paragraphs: Iterable<Paragraph | IndexEntry>;
  /** Optional label for messages and the lockfile (e.g. `bookworm/main`). */
  readonly label?: string;
}

export type MultiArch = 'no' | 'same' | 'foreign' | 'allowed';

/** One binary package version from an index. Relations are parsed on first use. */
export interface IndexedPackage {
  readonly name: string;
  readonly version: string;
  readonly parsedVersion: Version;
  readonly architecture: string;
  readonly multiArch: MultiArch;
  readonly essential: boolean;
  /** `Protected: yes` or the older `Important: yes` (apt prefers these providers). */
  readonly important: boolean;
  readonly priority: string;
  readonly suite: string;
  readonly label: string;
  readonly paragraph: Paragraph;
  readonly preDepends: readonly Alternatives[];
  readonly depends: readonly Alternatives[];
  readonly recommends: readonly Alternatives[];
  readonly conflicts: readonly Relation[];
  readonly breaks: readonly Relation[];
  readonly provides: readonly Relation[];
}

export interface UniverseOptions {
  /** Architectures to consider; the first is the native one. Default `['amd64']`. `all` is always included. */
  readonly architectures?: readonly string[];
}

interface Provider {
  readonly pkg: IndexedPackage;
  readonly provide: Relation;
}

/**
 * The packages of several indexes, keyed by name, with the candidate (highest) version of each (name, architecture)
 * and a reverse map of Provides. Building it reads only Package/Version/Architecture of every paragraph (an index
 * record answers those without searching its stanza); versions are parsed when two of one package meet, the Provides
 * map is built on the first `providers` call, and a package's other fields and relations when the resolver first
 * looks at it.
 */
export class PackageUniverse {
  readonly native: string;
  readonly architectures: readonly string[];
  /** Every package in index order, by name. */
  readonly #byName = new Map<string, IndexedPackage[]>();
  /** Provided name → candidates whose Provides names it (built on first use). */
  #providers: Map<string, IndexedPackage[]> | undefined;

  constructor(sources: readonly PackageSource[], options: UniverseOptions = {}) {
    this.architectures = options.architectures ?? ['amd64'];
    if (this.architectures.length === 0)
      throw new DebianError(
        'DEBIAN_PACKAGE_NOT_FOUND',
        'cannot build package universe: no architecture given',
      );
    this.native = this.architectures[0]!;
    const archs = new Set([...this.architectures, 'all']);
    for (const src of sources) {
      const label = src.label ?? src.suite;
      const origin: Origin = { suite: src.suite, label };
      for (const p of src.paragraphs) {
        const entry = !(p instanceof Paragraph);
        const name = entry ? p.name : p.get('Package');
        const version = entry ? p.version : p.get('Version');
        const arch = entry ? p.architecture : p.get('Architecture');
        if (!name || !version || !arch) {
          throw new DebianError(
            'DEBIAN_PACKAGE_NOT_FOUND',
            `cannot read index ${JSON.stringify(label)}: paragraph at line ${entry ? '?' : p.line} lacks Package, Version or Architecture`,
          );
        }
        if (!archs.has(arch)) continue;
        const pkg = new UniversePackage(p, name, version, arch, origin);
        const list = this.#byName.get(name);
        if (list) list.push(pkg);
        else this.#byName.set(name, [pkg]);
      }
    }
  }

  /** Returns every version of `name` in the indexes (all architectures), in index order. */
  versions(name: string): readonly IndexedPackage[] {
    return this.#byName.get(name) ?? [];
  }

  /** Returns the candidate of `name` for `arch` (the highest version, the first index's on a tie), if any. */
  candidate(name: string, arch: string): IndexedPackage | undefined {
    let best: IndexedPackage | undefined;
    for (const p of this.#byName.get(name) ?? []) {
      if (p.architecture !== arch) continue;
      if (!best || compareVersions(p.parsedVersion, best.parsedVersion) > 0) best = p;
    }
    return best;
  }

  /** Returns the candidates that provide `name` (any architecture), sorted by name then architecture. */
  providers(name: string): readonly Provider[] {
    const out: Provider[] = [];
    for (const pkg of this.#providerMap().get(name) ?? []) {
      for (const provide of pkg.provides) if (provide.name === name) out.push({ pkg, provide });
    }
    return out.sort(
      (a, b) => cmpStr(a.pkg.name, b.pkg.name) || cmpStr(a.pkg.architecture, b.pkg.architecture),
    );
  }

  /** Candidates of `name` across the configured architectures (native first, then `all`, then foreign). */
  candidatesOf(name: string): IndexedPackage[] {
    const out: IndexedPackage[] = [];
    for (const a of [this.native, 'all', ...this.architectures.slice(1)]) {
      const c = this.candidate(name, a);
      if (c) out.push(c);
    }
    return out;
  }

  /**
   * The reverse Provides map over the candidates, keyed by the names their Provides fields list. Only the names are
   * cut out here; a package's Provides is parsed (and checked) when `providers` looks at it.
   */
  #providerMap(): Map<string, IndexedPackage[]> {
    if (this.#providers) return this.#providers;
    const map = new Map<string, IndexedPackage[]>();
    for (const [name, list] of this.#byName) {
      for (const pkg of list) {
        const raw = (pkg as UniversePackage).rawProvides;
        if (!raw || this.candidate(name, pkg.architecture) !== pkg) continue;
        for (const provided of providedNames(raw)) {
          const l = map.get(provided);
          if (!l) map.set(provided, [pkg]);
          else if (l[l.length - 1] !== pkg) l.push(pkg);
        }
      }
    }
    this.#providers = map;
    return map;
  }
}

/** The package names of a Provides field (`a (= 1), b:any` → a, b), without checking its syntax. */
function providedNames(raw: string): string[] {
  const out: string[] = [];
  for (const item of raw.split(',')) {
    const m = PROVIDED_NAME_RE.exec(item);
    if (m) out.push(m[1]!);
  }
  return out;
}

const PROVIDED_NAME_RE = /^\s*([^\s(<[:|,]+)/;

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What the resolver reads of a package beyond its name, version and architecture, read once on first use. */
interface PackageDetails {
  version?: Version;
  multiArch?: MultiArch;
  essential?: boolean;
  important?: boolean;
  priority?: string;
  preDepends?: Alternatives[];
  depends?: Alternatives[];
  recommends?: Alternatives[];
  conflicts?: Relation[];
  breaks?: Relation[];
  provides?: Relation[];
}

/** Where packages came from; shared by all packages of one source. */
interface Origin {
  readonly suite: string;
  readonly label: string;
}

/**
 * An index paragraph as the resolver sees it. Everything but the name, version string and architecture is read from
 * the paragraph on first use and kept in one details object: most of an archive's 66k packages are never looked at,
 * and those cost six words each.
 */
class UniversePackage implements IndexedPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly #src: Paragraph | IndexEntry;
  readonly #origin: Origin;
  #details: PackageDetails | undefined;

  constructor(
    p: Paragraph | IndexEntry,
    name: string,
    version: string,
    architecture: string,
    origin: Origin,
  ) {
    this.#src = p;
    this.name = name;
    this.version = version;
    this.architecture = architecture;
    this.#origin = origin;
  }
  get paragraph(): Paragraph {
    const s = this.#src;
    return s instanceof Paragraph ? s : s.paragraph;
  }
  /** The Provides field, unparsed (an index entry has it without its paragraph). */
  get rawProvides(): string | undefined {
    const s = this.#src;
    return s instanceof Paragraph ? s.get('Provides') : s.provides;
  }
  get suite(): string {
    return this.#origin.suite;
  }
  get label(): string {
    return this.#origin.label;
  }
  get parsedVersion(): Version {
    const d = this.#d();
    d.version ??= parseVersion(this.version);
    return d.version;
  }
  get multiArch(): MultiArch {
    const d = this.#d();
    if (d.multiArch === undefined) {
      const ma = (this.paragraph.get('Multi-Arch') ?? 'no').toLowerCase();
      d.multiArch = ma === 'same' || ma === 'foreign' || ma === 'allowed' ? ma : 'no';
    }
    return d.multiArch;
  }
  get essential(): boolean {
    const d = this.#d();
    d.essential ??= this.#yes('Essential');
    return d.essential;
  }
  get important(): boolean {
    const d = this.#d();
    d.important ??= this.#yes('Protected') || this.#yes('Important');
    return d.important;
  }
  get priority(): string {
    const d = this.#d();
    d.priority ??= (this.paragraph.get('Priority') ?? 'optional').toLowerCase();
    return d.priority;
  }
  get preDepends(): readonly Alternatives[] {
    const d = this.#d();
    d.preDepends ??= this.#relations('Pre-Depends');
    return d.preDepends;
  }
  get depends(): readonly Alternatives[] {
    const d = this.#d();
    d.depends ??= this.#relations('Depends');
    return d.depends;
  }
  get recommends(): readonly Alternatives[] {
    const d = this.#d();
    d.recommends ??= this.#relations('Recommends');
    return d.recommends;
  }
  get conflicts(): readonly Relation[] {
    const d = this.#d();
    d.conflicts ??= this.#relations('Conflicts').flat();
    return d.conflicts;
  }
  get breaks(): readonly Relation[] {
    const d = this.#d();
    d.breaks ??= this.#relations('Breaks').flat();
    return d.breaks;
  }
  get provides(): readonly Relation[] {
    const d = this.#d();
    if (!d.provides) {
      const v = this.rawProvides;
      d.provides = v ? parseProvides(v, { package: this.name }) : [];
    }
    return d.provides;
  }
  #d(): PackageDetails {
    this.#details ??= {};
    return this.#details;
  }
  #yes(field: string): boolean {
    return (this.paragraph.get(field) ?? '').toLowerCase() === 'yes';
  }
  #relations(field: string): Alternatives[] {
    const v = this.paragraph.get(field);
    return v ? parseRelations(v, { field, package: this.name }) : [];
  }
}

/** One link of a dependency chain: `package` was pulled in by `from` through `relation` (in `field`). */
export interface ChainLink {
  readonly package: string;
  readonly version: string;
  readonly architecture: string;
  /** The field and OR-group of the depender that this package satisfies; undefined for a requested root. */
  readonly field?: string;
  readonly relation?: string;
}

/** A selected package and where it comes from. */
export interface ResolvedPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly suite: string;
  readonly label: string;
  readonly paragraph: Paragraph;
  /** True when it was asked for (a root), false when it came in as a dependency. */
  readonly requested: boolean;
}

/** The result of a resolution: the selected packages (sorted by name, then architecture) and the reasons. */
export interface Resolution {
  readonly packages: readonly ResolvedPackage[];
  /**
   * Returns the chains that explain why `name` (optionally `name:arch`) is in the set: one shortest chain from a
   * requested root through each distinct package that depends on it, root first, `name` last. Empty when absent.
   */
  why(name: string): ChainLink[][];
}

export interface ResolveOptions {
  /** Also follow Recommends (apt's default; off here as in distroless builds). */
  readonly recommends?: boolean;
}

type Key = string;
const keyOf = (p: IndexedPackage): Key => `${p.name}:${p.architecture}`;

interface Edge {
  readonly from: Key;
  readonly field: string;
  readonly group: string;
}

/**
 * The selection while the walk runs. Every change is written to `undo`, so trying an alternative and rolling it back
 * costs what the alternative changed, not a copy of the selection (a chain 100 000 packages deep stays linear). The
 * two name indexes answer "which selected packages satisfy or conflict with this name" in selection order, which is
 * the order a scan over `selected` would find them in.
 */
interface State {
  /** Selected packages in selection order. */
  readonly selected: Map<Key, IndexedPackage>;
  /** Reverse edges for `why`: selected package → dependers that it satisfies. */
  readonly edges: Map<Key, Edge[]>;
  /** Name → selected packages of that name or providing it, in selection order. */
  readonly answering: Map<string, IndexedPackage[]>;
  /** Name → selected packages whose Conflicts or Breaks name it, in selection order. */
  readonly conflicting: Map<string, IndexedPackage[]>;
  /** Selection order of each selected package. */
  readonly order: Map<IndexedPackage, number>;
  /** Packages whose dependencies were walked (or are being walked). */
  readonly visited: Set<Key>;
  /** Changes, newest last; a mark is a length of this log. */
  readonly undo: Undo[];
  seq: number;
}

type Undo =
  | { readonly kind: 'select'; readonly pkg: IndexedPackage }
  | { readonly kind: 'edge'; readonly key: Key; readonly prev: Edge[] | undefined }
  | { readonly kind: 'visit'; readonly key: Key };

function newState(): State {
  return {
    selected: new Map(),
    edges: new Map(),
    answering: new Map(),
    conflicting: new Map(),
    order: new Map(),
    visited: new Set(),
    undo: [],
    seq: 0,
  };
}

/** The names `p` answers to: its own and the ones it provides. */
function answersTo(p: IndexedPackage): Set<string> {
  return new Set([p.name, ...p.provides.map((r) => r.name)]);
}

/** The names `p` conflicts with or breaks. */
function conflictNames(p: IndexedPackage): Set<string> {
  return new Set([...p.conflicts, ...p.breaks].map((r) => r.name));
}

function select(s: State, p: IndexedPackage): void {
  const k = keyOf(p);
  if (s.selected.get(k) === p) return;
  s.selected.set(k, p);
  s.order.set(p, s.seq++);
  for (const n of answersTo(p)) listAdd(s.answering, n, p);
  for (const n of conflictNames(p)) listAdd(s.conflicting, n, p);
  s.undo.push({ kind: 'select', pkg: p });
}

function visit(s: State, k: Key): void {
  s.visited.add(k);
  s.undo.push({ kind: 'visit', key: k });
}

function listAdd(m: Map<string, IndexedPackage[]>, name: string, p: IndexedPackage): void {
  const l = m.get(name);
  if (l) l.push(p);
  else m.set(name, [p]);
}

/** Removes `p`, the newest entry of each of its lists (changes are undone newest first). */
function listDrop(m: Map<string, IndexedPackage[]>, name: string, p: IndexedPackage): void {
  const l = m.get(name)!;
  if (l.pop() !== p) throw new Error(`resolver undo out of order at ${JSON.stringify(name)}`);
  if (l.length === 0) m.delete(name);
}

/** Rolls the state back to `mark` (a length of the undo log). */
function undoTo(s: State, mark: number): void {
  while (s.undo.length > mark) {
    const u = s.undo.pop()!;
    if (u.kind === 'visit') s.visited.delete(u.key);
    else if (u.kind === 'edge') {
      if (u.prev) s.edges.set(u.key, u.prev);
      else s.edges.delete(u.key);
    } else {
      s.selected.delete(keyOf(u.pkg));
      s.order.delete(u.pkg);
      for (const n of answersTo(u.pkg)) listDrop(s.answering, n, u.pkg);
      for (const n of conflictNames(u.pkg)) listDrop(s.conflicting, n, u.pkg);
    }
  }
}

const PRIORITY_RANK: Record<string, number> = {
  required: 1,
  important: 2,
  standard: 3,
  optional: 4,
  extra: 5,
};

/**
 * Returns the packages needed to install `requests` (`name`, `name:arch`, `name=version`, `name/suite`, or a
 * combination like `name:arm64=1.0`). Deterministic: the same indexes and requests give the same selection. Throws
 * DEBIAN_PACKAGE_NOT_FOUND for an unknown request, DEBIAN_UNSATISFIABLE with the dependency chain when some OR-group
 * cannot be met, DEBIAN_CONFLICT when requested packages conflict with each other.
 */
export function resolveDependencies(
  universe: PackageUniverse,
  requests: readonly string[],
  options: ResolveOptions = {},
): Resolution {
  const state = newState();
  const roots: IndexedPackage[] = [];
  for (const r of requests) {
    const pkg = findRequest(universe, r);
    const old = state.selected.get(keyOf(pkg));
    if (old && old !== pkg)
      throw new DebianError(
        'DEBIAN_CONFLICT',
        `cannot install both ${JSON.stringify(`${old.name}=${old.version}`)} and ${JSON.stringify(`${pkg.name}=${pkg.version}`)}: both were requested`,
        { package: pkg.name },
      );
    const clash = conflictBetween(state, pkg);
    if (clash)
      throw new DebianError(
        'DEBIAN_CONFLICT',
        `cannot install requested package ${JSON.stringify(pkg.name)}: ${clash}`,
        { package: pkg.name },
      );
    select(state, pkg);
    roots.push(pkg);
  }
  const ctx: Ctx = { universe, recommends: options.recommends ?? false };
  for (const root of roots) {
    const failure = installDeps(ctx, state, root);
    if (failure) throw failure;
  }
  const rootKeys = new Set(roots.map(keyOf));
  const packages = [...state.selected.values()]
    .sort((a, b) => cmpStr(a.name, b.name) || cmpStr(a.architecture, b.architecture))
    .map(
      (p): ResolvedPackage => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        suite: p.suite,
        label: p.label,
        // The result outlives the universe: it keeps copies, not the index the paragraphs point into.
        paragraph: p.paragraph.detached(),
        requested: rootKeys.has(keyOf(p)),
      }),
    );
  const selected = new Map<Key, Named>();
  for (const [k, p] of state.selected)
    selected.set(k, { name: p.name, version: p.version, architecture: p.architecture });
  const edges = state.edges;
  return {
    packages,
    why: (name) => whyChains(selected, edges, rootKeys, name),
  };
}

/** What a chain link needs of a package. */
interface Named {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
}

function link(p: Named, field?: string, relation?: string): ChainLink {
  return {
    package: p.name,
    version: p.version,
    architecture: p.architecture,
    ...(field ? { field } : {}),
    ...(relation ? { relation } : {}),
  };
}

/** A dependency chain as a linked list, newest link first: extending it costs one node, not a copy. */
interface ChainNode {
  readonly link: ChainLink;
  readonly up: ChainNode | undefined;
}

/** Returns the chain root first. */
function chainOf(node: ChainNode): ChainLink[] {
  const out: ChainLink[] = [];
  for (let n: ChainNode | undefined = node; n; n = n.up) out.push(n.link);
  return out.reverse();
}

function formatChain(chain: readonly ChainLink[]): string {
  return chain
    .map((l) => `${l.relation ? `(${l.field}: ${l.relation}) ` : ''}${l.package} ${l.version}`)
    .join(' → ');
}

function findRequest(universe: PackageUniverse, request: string): IndexedPackage {
  const m = /^([^:=/]+)(?::([^=/]+))?(?:=([^/]+))?(?:\/(.+))?$/.exec(request.trim());
  if (!m)
    throw new DebianError(
      'DEBIAN_PACKAGE_NOT_FOUND',
      `cannot parse package request ${JSON.stringify(request)}`,
    );
  const [, name, arch, version, suite] = m as unknown as [string, string, string?, string?, string?];
  const archs = arch ? [arch] : [universe.native, 'all'];
  let pool = universe.versions(name).filter((p) => archs.includes(p.architecture));
  if (pool.length === 0) {
    const provs = universe.providers(name).filter((p) => archs.includes(p.pkg.architecture));
    const names = [...new Set(provs.map((p) => p.pkg.name))];
    if (names.length === 1 && !version && !suite) return provs[0]!.pkg;
    throw new DebianError(
      'DEBIAN_PACKAGE_NOT_FOUND',
      names.length > 1
        ? `cannot select package ${JSON.stringify(request)}: it is a virtual package provided by ${names.map((n) => JSON.stringify(n)).join(', ')}; request one of them`
        : `cannot find package ${JSON.stringify(request)} for ${archs.join('/')} in the configured indexes; check the name and the suites/components in pare.yaml`,
      { package: name },
    );
  }
  if (suite) pool = pool.filter((p) => p.suite === suite || p.label === suite);
  if (version) pool = pool.filter((p) => compareVersions(p.parsedVersion, version) === 0);
  if (!version && !suite) {
    const c = universe.candidate(name, pool[0]!.architecture === 'all' ? 'all' : (arch ?? universe.native));
    if (c) return c;
  }
  const best = pool.reduce<IndexedPackage | undefined>(
    (a, p) => (!a || compareVersions(p.parsedVersion, a.parsedVersion) > 0 ? p : a),
    undefined,
  );
  if (!best) {
    const have = universe
      .versions(name)
      .map((p) => `${p.version} (${p.label})`)
      .join(', ');
    throw new DebianError(
      'DEBIAN_PACKAGE_NOT_FOUND',
      `cannot find ${JSON.stringify(request)} in the configured indexes (available: ${have}); if the version is gone from the mirror, point the mirror at a snapshot`,
      { package: name },
    );
  }
  return best;
}

interface Ctx {
  readonly universe: PackageUniverse;
  readonly recommends: boolean;
}

/** The architecture a package's dependencies are resolved for (`all` packages act as native ones). */
function depArch(u: PackageUniverse, p: IndexedPackage): string {
  return p.architecture === 'all' ? u.native : p.architecture;
}

/** dpkg's deparchsatisfied: can `target` (of its architecture) satisfy `rel` written by a package of `fromArch`? */
function archSatisfies(u: PackageUniverse, target: IndexedPackage, rel: Relation, fromArch: string): boolean {
  if (target.multiArch === 'foreign') return true;
  const q = rel.archQualifier;
  if (q === 'any') return target.multiArch === 'allowed';
  const want = q === undefined || q === 'all' ? fromArch : q === 'native' ? u.native : q;
  const have = target.architecture === 'all' ? u.native : target.architecture;
  return want === have;
}

function versionOk(v: Version, rel: Relation): boolean {
  return !rel.constraint || satisfiesVersion(v, rel.constraint.op, rel.constraint.version);
}

/** True when `target` (real or through a Provides) satisfies `rel` from a depender of architecture `fromArch`. */
function satisfiesRelation(
  u: PackageUniverse,
  target: IndexedPackage,
  rel: Relation,
  fromArch: string,
): boolean {
  if (
    target.name === rel.name &&
    versionOk(target.parsedVersion, rel) &&
    archSatisfies(u, target, rel, fromArch)
  )
    return true;
  for (const prov of target.provides) {
    if (prov.name !== rel.name) continue;
    if (rel.constraint) {
      if (!prov.constraint) continue;
      if (!satisfiesVersion(prov.constraint.version, rel.constraint.op, rel.constraint.version)) continue;
    }
    if (archSatisfies(u, target, rel, fromArch)) return true;
  }
  return false;
}

/** Candidates for one alternative, in apt's order: the real package, then its providers by CompareProviders. */
function candidatesFor(u: PackageUniverse, rel: Relation, fromArch: string): IndexedPackage[] {
  const real = u
    .candidatesOf(rel.name)
    .filter((c) => versionOk(c.parsedVersion, rel) && archSatisfies(u, c, rel, fromArch));
  // candidatesOf lists native, then `all`, then foreign: like apt's CompareProviders, a Multi-Arch: foreign or allowed
  // package satisfies a foreign depender with its native build (only those can cross architectures at all).
  const provs = u
    .providers(rel.name)
    .map((p) => p.pkg)
    .filter((p) => !real.includes(p) && satisfiesRelation(u, p, rel, fromArch));
  const seen = new Set<IndexedPackage>();
  const uniq = provs.filter((p) => !seen.has(p) && seen.add(p));
  uniq.sort((a, b) => compareProviders(u, a, b));
  return [...real, ...uniq];
}

/** apt's CompareProviders, as an ordering (negative = `a` preferred). The final tie-break is by name. */
function compareProviders(u: PackageUniverse, a: IndexedPackage, b: IndexedPackage): number {
  if (a.essential !== b.essential) return a.essential ? -1 : 1;
  if (a.important !== b.important) return a.important ? -1 : 1;
  const an = a.architecture === u.native || a.architecture === 'all';
  const bn = b.architecture === u.native || b.architecture === 'all';
  if (an !== bn) return an ? -1 : 1;
  const pa = PRIORITY_RANK[a.priority] ?? 4;
  const pb = PRIORITY_RANK[b.priority] ?? 4;
  if (pa !== pb) return pa - pb;
  return cmpStr(a.name, b.name) || cmpStr(a.architecture, b.architecture);
}

/** Returns a description of the conflict between `pkg` and the selection, or undefined when there is none. */
function conflictBetween(s: State, pkg: IndexedPackage): string | undefined {
  // Only these selected packages can clash with `pkg`: same name, named by its Conflicts/Breaks, or naming it (or
  // what it provides) in theirs. They are checked in selection order, as a scan of the whole selection would.
  const others = new Set<IndexedPackage>(s.answering.get(pkg.name));
  for (const rel of [...pkg.conflicts, ...pkg.breaks])
    for (const o of s.answering.get(rel.name) ?? []) others.add(o);
  for (const n of answersTo(pkg)) for (const o of s.conflicting.get(n) ?? []) others.add(o);
  const ordered = [...others].sort((a, b) => s.order.get(a)! - s.order.get(b)!);
  for (const other of ordered) {
    if (other === pkg) continue;
    if (other.name === pkg.name) {
      if (other.architecture !== pkg.architecture && pkg.multiArch === 'same' && other.multiArch === 'same') {
        if (compareVersions(other.parsedVersion, pkg.parsedVersion) === 0) continue;
      }
      return `${JSON.stringify(`${pkg.name}:${pkg.architecture}=${pkg.version}`)} cannot be installed next to ${JSON.stringify(`${other.name}:${other.architecture}=${other.version}`)}`;
    }
    const hit = negativeHit(pkg, other) ?? negativeHit(other, pkg);
    if (hit) return hit;
  }
  return undefined;
}

/** Does `a` conflict with or break `b`? */
function negativeHit(a: IndexedPackage, b: IndexedPackage): string | undefined {
  for (const [field, rels] of [
    ['Conflicts', a.conflicts],
    ['Breaks', a.breaks],
  ] as const) {
    for (const rel of rels) {
      if (rel.name === b.name) {
        if (versionOk(b.parsedVersion, rel))
          return `${a.name} ${a.version} ${field} with ${formatRelation(rel)}, which ${b.name} ${b.version} is`;
        continue;
      }
      // A conflict on a virtual name hits every provider but the package itself (Policy §7.6.2).
      for (const prov of b.provides) {
        if (prov.name !== rel.name || b.name === a.name) continue;
        if (
          rel.constraint &&
          !(
            prov.constraint &&
            satisfiesVersion(prov.constraint.version, rel.constraint.op, rel.constraint.version)
          )
        )
          continue;
        return `${a.name} ${a.version} ${field} with ${formatRelation(rel)}, which ${b.name} ${b.version} provides`;
      }
    }
  }
  return undefined;
}

function groupSatisfied(
  u: PackageUniverse,
  s: State,
  g: Alternatives,
  fromArch: string,
): IndexedPackage | undefined {
  for (const rel of g) {
    // Only a package of that name or providing it can satisfy `rel`; the first selected one wins.
    for (const p of s.answering.get(rel.name) ?? []) if (satisfiesRelation(u, p, rel, fromArch)) return p;
  }
  return undefined;
}

function addEdge(s: State, to: IndexedPackage, from: IndexedPackage, field: string, group: string): void {
  const k = keyOf(to);
  const prev = s.edges.get(k);
  const list = prev ?? [];
  if (!list.some((e) => e.from === keyOf(from) && e.field === field && e.group === group)) {
    s.edges.set(k, [...list, { from: keyOf(from), field, group }]);
    s.undo.push({ kind: 'edge', key: k, prev });
  }
}

/** A package whose dependencies are being walked: the next OR-group to look at, and the one being tried. */
interface Frame {
  readonly pkg: IndexedPackage;
  readonly chain: ChainNode;
  readonly fromArch: string;
  readonly fields: readonly (readonly [string, readonly Alternatives[]])[];
  field: number;
  group: number;
  trying: Attempt | undefined;
}

/** An OR-group with no selected package satisfying it: its alternatives' candidates, tried in order. */
interface Attempt {
  readonly field: string;
  readonly group: Alternatives;
  readonly text: string;
  rel: number;
  candidates: IndexedPackage[];
  next: number;
  /** The undo mark before the candidate being tried. */
  mark: number;
  firstFailure: DebianError | undefined;
}

/**
 * Walks `root`'s dependencies depth-first, selecting what is missing. Returns undefined on success or the error that
 * explains the first unsatisfiable group (the state is then partly updated; callers roll back). Iterative, with an
 * explicit stack of frames: a valid chain of any depth resolves without growing the call stack.
 */
function installDeps(ctx: Ctx, s: State, root: IndexedPackage): DebianError | undefined {
  const u = ctx.universe;
  const stack: Frame[] = [];
  const enter = (pkg: IndexedPackage, chain: ChainNode): boolean => {
    const k = keyOf(pkg);
    if (s.visited.has(k)) return false;
    visit(s, k);
    const fields: [string, readonly Alternatives[]][] = [
      ['Pre-Depends', pkg.preDepends],
      ['Depends', pkg.depends],
    ];
    if (ctx.recommends) fields.push(['Recommends', pkg.recommends]);
    stack.push({ pkg, chain, fromArch: depArch(u, pkg), fields, field: 0, group: 0, trying: undefined });
    return true;
  };
  if (!enter(root, { link: link(root), up: undefined })) return undefined;
  /** The outcome of the frame just finished, for its parent: `{ error }` (undefined error = success). */
  let returned: { error: DebianError | undefined } | undefined;
  for (;;) {
    const f = stack[stack.length - 1];
    if (!f) return returned?.error;
    if (returned) {
      const a = f.trying!;
      if (returned.error) {
        a.firstFailure ??= returned.error;
        undoTo(s, a.mark);
      } else {
        f.trying = undefined;
        f.group++;
      }
      returned = undefined;
    }
    let descended = false;
    while (!descended && !returned) {
      if (!f.trying) {
        const entry = f.fields[f.field];
        if (!entry) {
          returned = { error: undefined };
          break;
        }
        const [field, groups] = entry;
        const g = groups[f.group];
        if (!g) {
          f.field++;
          f.group = 0;
          continue;
        }
        const text = formatAlternatives(g);
        const have = groupSatisfied(u, s, g, f.fromArch);
        if (have) {
          addEdge(s, have, f.pkg, field, text);
          f.group++;
          continue;
        }
        f.trying = {
          field,
          group: g,
          text,
          rel: 0,
          candidates: g.length > 0 ? candidatesFor(u, g[0]!, f.fromArch) : [],
          next: 0,
          mark: s.undo.length,
          firstFailure: undefined,
        };
      }
      const a = f.trying;
      const cand = a.candidates[a.next++];
      if (!cand) {
        if (++a.rel < a.group.length) {
          a.candidates = candidatesFor(u, a.group[a.rel]!, f.fromArch);
          a.next = 0;
          continue;
        }
        returned = {
          error:
            a.firstFailure ??
            new DebianError(
              'DEBIAN_UNSATISFIABLE',
              `cannot resolve ${formatChain(chainOf(f.chain))}: nothing satisfies (${a.field}: ${a.text})${describeMissing(u, a.group)}`,
              { package: f.pkg.name, chain: chainOf(f.chain).map((l) => l.package) },
            ),
        };
        break;
      }
      a.mark = s.undo.length;
      const clash = conflictBetween(s, cand);
      if (clash) {
        a.firstFailure ??= new DebianError(
          'DEBIAN_CONFLICT',
          `cannot resolve ${formatChain(chainOf(f.chain))} → (${a.field}: ${a.text}) ${cand.name} ${cand.version}: ${clash}`,
          { package: cand.name, chain: [...chainOf(f.chain).map((l) => l.package), cand.name] },
        );
        continue;
      }
      select(s, cand);
      addEdge(s, cand, f.pkg, a.field, a.text);
      if (enter(cand, { link: link(cand, a.field, a.text), up: f.chain })) descended = true;
      else {
        // Already walked: as good as a walk that succeeded.
        f.trying = undefined;
        f.group++;
      }
    }
    if (returned) stack.pop();
  }
}

function describeMissing(u: PackageUniverse, g: Alternatives): string {
  const notes = g.map((rel) => {
    const vs = u.versions(rel.name);
    if (vs.length === 0 && u.providers(rel.name).length === 0)
      return `${JSON.stringify(rel.name)} is in no index`;
    const best = u.candidatesOf(rel.name).map((c) => `${c.version} (${c.architecture}, ${c.label})`);
    return best.length > 0
      ? `${JSON.stringify(rel.name)} candidate is ${best.join(', ')}`
      : `${JSON.stringify(rel.name)} has no candidate for ${u.architectures.join('/')}`;
  });
  return `; ${notes.join('; ')}`;
}

function whyChains(
  selected: ReadonlyMap<Key, Named>,
  edges: ReadonlyMap<Key, readonly Edge[]>,
  roots: ReadonlySet<Key>,
  name: string,
): ChainLink[][] {
  const targets = [...selected.keys()]
    .filter((k) => k === name || k.slice(0, k.lastIndexOf(':')) === name)
    .sort();
  const out: ChainLink[][] = [];
  for (const t of targets) {
    const p = selected.get(t)!;
    if (roots.has(t)) out.push([link(p)]);
    const viaList = [...(edges.get(t) ?? [])].sort((a, b) => cmpStr(a.from, b.from));
    for (const via of viaList) {
      const prefix = shortestFromRoot(selected, edges, roots, via.from, t);
      if (prefix) out.push([...prefix, link(p, via.field, via.group)]);
    }
  }
  return out;
}

/** Breadth-first search backwards from `target` over the edges to the nearest root, never passing `avoid`. */
function shortestFromRoot(
  selected: ReadonlyMap<Key, Named>,
  edges: ReadonlyMap<Key, readonly Edge[]>,
  roots: ReadonlySet<Key>,
  target: Key,
  avoid: Key,
): ChainLink[] | undefined {
  // next.get(d) = the package d pulls in on the way to `target`, and through which field and OR-group.
  const next = new Map<Key, { to: Key; field: string; group: string } | null>([[target, null]]);
  const queue: Key[] = [target];
  while (queue.length > 0) {
    const k = queue.shift()!;
    if (roots.has(k)) {
      const chain: ChainLink[] = [link(selected.get(k)!)];
      for (let step = next.get(k); step; step = next.get(step.to)) {
        chain.push(link(selected.get(step.to)!, step.field, step.group));
      }
      return chain;
    }
    for (const e of [...(edges.get(k) ?? [])].sort((a, b) => cmpStr(a.from, b.from))) {
      if (next.has(e.from) || e.from === avoid) continue;
      next.set(e.from, { to: k, field: e.field, group: e.group });
      queue.push(e.from);
    }
  }
  return undefined;
}
