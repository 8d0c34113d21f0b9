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

interface State {
  selected: Map<Key, IndexedPackage>;
  /** Reverse edges for `why`: selected package → dependers that it satisfies. */
  edges: Map<Key, Edge[]>;
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
  const state: State = { selected: new Map(), edges: new Map() };
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
    state.selected.set(keyOf(pkg), pkg);
    roots.push(pkg);
  }
  const ctx: Ctx = { universe, recommends: options.recommends ?? false, visited: new Set() };
  for (const root of roots) {
    const failure = installDeps(ctx, state, root, [link(root)]);
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
  readonly visited: Set<Key>;
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
  for (const other of s.selected.values()) {
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
    for (const p of s.selected.values()) if (satisfiesRelation(u, p, rel, fromArch)) return p;
  }
  return undefined;
}

function addEdge(s: State, to: IndexedPackage, from: IndexedPackage, field: string, group: string): void {
  const k = keyOf(to);
  const list = s.edges.get(k) ?? [];
  if (!list.some((e) => e.from === keyOf(from) && e.field === field && e.group === group)) {
    s.edges.set(k, [...list, { from: keyOf(from), field, group }]);
  }
}

function cloneState(s: State): State {
  return { selected: new Map(s.selected), edges: new Map(s.edges) };
}

function restore(into: State, from: State): void {
  into.selected = from.selected;
  into.edges = from.edges;
}

/**
 * Walks `pkg`'s dependencies depth-first, selecting what is missing. Returns undefined on success or the error that
 * explains the first unsatisfiable group (the state is then partly updated; callers roll back).
 */
function installDeps(ctx: Ctx, s: State, pkg: IndexedPackage, chain: ChainLink[]): DebianError | undefined {
  const k = keyOf(pkg);
  if (ctx.visited.has(k)) return undefined;
  ctx.visited.add(k);
  const u = ctx.universe;
  const fromArch = depArch(u, pkg);
  const fields: [string, readonly Alternatives[]][] = [
    ['Pre-Depends', pkg.preDepends],
    ['Depends', pkg.depends],
  ];
  if (ctx.recommends) fields.push(['Recommends', pkg.recommends]);
  for (const [field, groups] of fields) {
    for (const g of groups) {
      const text = formatAlternatives(g);
      const have = groupSatisfied(u, s, g, fromArch);
      if (have) {
        addEdge(s, have, pkg, field, text);
        continue;
      }
      let firstFailure: DebianError | undefined;
      let done = false;
      const tried: string[] = [];
      for (const rel of g) {
        for (const cand of candidatesFor(u, rel, fromArch)) {
          tried.push(`${cand.name} ${cand.version}`);
          const saved = cloneState(s);
          const visitedBefore = new Set(ctx.visited);
          const clash = conflictBetween(s, cand);
          if (clash) {
            firstFailure ??= new DebianError(
              'DEBIAN_CONFLICT',
              `cannot resolve ${formatChain(chain)} → (${field}: ${text}) ${cand.name} ${cand.version}: ${clash}`,
              { package: cand.name, chain: [...chain.map((l) => l.package), cand.name] },
            );
            continue;
          }
          s.selected.set(keyOf(cand), cand);
          addEdge(s, cand, pkg, field, text);
          const err = installDeps(ctx, s, cand, [...chain, link(cand, field, text)]);
          if (!err) {
            done = true;
            break;
          }
          firstFailure ??= err;
          restore(s, saved);
          ctx.visited.clear();
          for (const v of visitedBefore) ctx.visited.add(v);
        }
        if (done) break;
      }
      if (done) continue;
      if (firstFailure) return firstFailure;
      return new DebianError(
        'DEBIAN_UNSATISFIABLE',
        `cannot resolve ${formatChain(chain)}: nothing satisfies (${field}: ${text})${describeMissing(u, g)}`,
        { package: pkg.name, chain: chain.map((l) => l.package) },
      );
    }
  }
  return undefined;
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
