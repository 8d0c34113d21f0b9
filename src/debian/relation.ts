import { DebianError } from '../errors.ts';
import { parseVersion, parseVersionOp, type Version, type VersionOp } from './version.ts';

/**
 * Package relationship fields (Debian Policy §7.1, deb-src-control(5)): `Depends`, `Pre-Depends`, `Recommends`,
 * `Suggests`, `Conflicts`, `Breaks`, `Replaces`, `Provides`. A field is a comma-separated AND-list of OR-groups
 * (`a | b`); each alternative is a package name with an optional architecture qualifier (`:any`, `:native`,
 * `:amd64`), an optional version constraint (`(>= 1.0)`), an optional architecture restriction (`[amd64 !i386]`) and
 * optional build-profile restrictions (`<!nocheck> <stage1 cross>`). Binary indexes never carry the last two, but the
 * grammar is shared with source packages, so they are parsed, and `reduceRelations` evaluates them. Pure; no I/O.
 */

/** One alternative of a relation. */
export interface Relation {
  readonly name: string;
  /** The `:qualifier` after the name: `any`, `native` or an architecture name. */
  readonly archQualifier?: string;
  readonly constraint?: { readonly op: VersionOp; readonly version: Version; readonly text: string };
  /** `[a !b]`: the architectures it applies to (all positive or all negated, as Policy requires). */
  readonly archRestriction?: { readonly negated: boolean; readonly archs: readonly string[] };
  /** `<a !b> <c>`: a disjunction of conjunctions of profile terms. */
  readonly profiles?: readonly (readonly { readonly negated: boolean; readonly name: string }[])[];
}

/** An OR-group: satisfied when any one alternative is. */
export type Alternatives = readonly Relation[];

/** Policy §5.6.1: lowercase letters, digits, `+`, `-`, `.`; at least two characters; starts alphanumerically. */
const NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** Real archives contain a few names with uppercase letters (pre-Policy uploads); accept but only outside strict. */
const LOOSE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/;
const ARCH = /^[a-z0-9][a-z0-9-]*$/;

export interface ParseRelationsOptions {
  /** Field name for error messages (`Depends`). */
  readonly field?: string;
  /** Package whose field this is, for error messages. */
  readonly package?: string;
  /** Require Policy-conformant names (default false: accept what dpkg accepts from old archives). */
  readonly strict?: boolean;
}

/**
 * Returns the OR-groups of a relationship field. An empty or blank field gives `[]`. Throws DEBIAN_RELATION_INVALID
 * naming the field, package and offending text for anything dpkg would refuse (missing names, bad operators,
 * unterminated brackets, stray characters).
 */
export function parseRelations(text: string, options: ParseRelationsOptions = {}): Alternatives[] {
  const out: Alternatives[] = [];
  const clean = text.replace(/\s+/g, ' ').trim();
  if (clean === '') return out;
  for (const group of clean.split(',')) {
    const g = group.trim();
    // dpkg accepts a trailing comma (and `,,`) in relationship fields.
    if (g === '') continue;
    out.push(g.split('|').map((alt) => parseOne(alt.trim(), text, options)));
  }
  return out;
}

/**
 * Returns the relations of a `Provides` field: a plain list (no OR-groups), whose only allowed version operator is `=`
 * (Policy §7.5). Throws DEBIAN_RELATION_INVALID otherwise.
 */
export function parseProvides(text: string, options: ParseRelationsOptions = {}): Relation[] {
  const groups = parseRelations(text, { field: 'Provides', ...options });
  return groups.map((g) => {
    if (g.length !== 1) throw invalid(text, options, 'alternatives ("|") are not allowed here');
    const r = g[0]!;
    if (r.constraint && r.constraint.op !== '=')
      throw invalid(
        text,
        options,
        `only "=" is allowed in a version, got ${JSON.stringify(r.constraint.op)}`,
      );
    return r;
  });
}

function invalid(text: string, o: ParseRelationsOptions, why: string): DebianError {
  const field = o.field ?? 'relationship';
  const of = o.package ? ` of package ${JSON.stringify(o.package)}` : '';
  return new DebianError(
    'DEBIAN_RELATION_INVALID',
    `cannot parse ${field} field${of} ${JSON.stringify(text.trim().slice(0, 200))}: ${why}`,
    { package: o.package },
  );
}

function parseOne(s: string, full: string, o: ParseRelationsOptions): Relation {
  const m = /^([^\s(<[:]+)(?::([^\s(<[]+))?\s*(.*)$/.exec(s);
  if (!m) throw invalid(full, o, `missing package name in ${JSON.stringify(s)}`);
  const name = m[1]!;
  if (!(o.strict ? NAME : LOOSE_NAME).test(name))
    throw invalid(full, o, `invalid package name ${JSON.stringify(name)}`);
  const rel: {
    name: string;
    archQualifier?: string;
    constraint?: Relation['constraint'];
    archRestriction?: Relation['archRestriction'];
    profiles?: Relation['profiles'];
  } = { name };
  if (m[2] !== undefined) {
    if (!ARCH.test(m[2])) throw invalid(full, o, `invalid architecture qualifier ${JSON.stringify(m[2])}`);
    rel.archQualifier = m[2];
  }
  let rest = m[3]!;
  if (rest.startsWith('(')) {
    const close = rest.indexOf(')');
    if (close < 0) throw invalid(full, o, `unterminated version in ${JSON.stringify(s)}`);
    const inner = rest.slice(1, close).trim();
    const vm = /^([<>=]+)\s*([^\s<>=]\S*)$/.exec(inner);
    if (!vm) throw invalid(full, o, `want "(op version)", got ${JSON.stringify(`(${inner})`)}`);
    const op = parseVersionOp(vm[1]!);
    if (!op) throw invalid(full, o, `invalid version operator ${JSON.stringify(vm[1])}`);
    let version: Version;
    try {
      version = parseVersion(vm[2]!);
    } catch (e) {
      throw invalid(full, o, (e as Error).message);
    }
    rel.constraint = { op, version, text: vm[2]! };
    rest = rest.slice(close + 1).trim();
  }
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw invalid(full, o, `unterminated architecture list in ${JSON.stringify(s)}`);
    const terms = rest.slice(1, close).trim().split(' ').filter(Boolean);
    if (terms.length === 0) throw invalid(full, o, 'empty architecture list');
    const negated = terms[0]!.startsWith('!');
    const archs = terms.map((t) => {
      if (t.startsWith('!') !== negated)
        throw invalid(full, o, 'an architecture list must be all negated or all positive');
      const a = negated ? t.slice(1) : t;
      if (!ARCH.test(a)) throw invalid(full, o, `invalid architecture ${JSON.stringify(a)}`);
      return a;
    });
    rel.archRestriction = { negated, archs };
    rest = rest.slice(close + 1).trim();
  }
  const profiles: { negated: boolean; name: string }[][] = [];
  while (rest.startsWith('<')) {
    const close = rest.indexOf('>');
    if (close < 0) throw invalid(full, o, `unterminated profile list in ${JSON.stringify(s)}`);
    const terms = rest.slice(1, close).trim().split(' ').filter(Boolean);
    if (terms.length === 0) throw invalid(full, o, 'empty profile list');
    profiles.push(
      terms.map((t) => {
        const negated = t.startsWith('!');
        const n = negated ? t.slice(1) : t;
        if (!/^[a-z0-9][a-z0-9.+-]*$/.test(n))
          throw invalid(full, o, `invalid build profile ${JSON.stringify(n)}`);
        return { negated, name: n };
      }),
    );
    rest = rest.slice(close + 1).trim();
  }
  if (profiles.length > 0) rel.profiles = profiles;
  if (rest !== '') throw invalid(full, o, `unexpected ${JSON.stringify(rest)} after ${JSON.stringify(name)}`);
  return rel;
}

/**
 * True when architecture `arch` matches the architecture wildcard `pattern`, as dpkg-architecture's `--is` does for
 * the common forms: `any`, `all`, an exact name, `<os>-any` (`linux-any`) and `any-<cpu>` (`any-amd64`). Debian
 * architecture names without a `-` are Linux ones (`amd64` is `linux-amd64`).
 */
export function archMatches(arch: string, pattern: string): boolean {
  if (pattern === 'any' || pattern === arch) return true;
  const [os, cpu] = arch.includes('-')
    ? [arch.slice(0, arch.lastIndexOf('-')), arch.slice(arch.lastIndexOf('-') + 1)]
    : ['linux', arch];
  if (pattern.endsWith('-any')) return pattern.slice(0, -4) === os;
  if (pattern.startsWith('any-')) return pattern.slice(4) === cpu;
  return false;
}

/**
 * Returns the relations that apply on architecture `arch` with the build profiles `profiles` active, dropping
 * alternatives restricted away and OR-groups left empty (what dpkg-gencontrol does to a source package's relations).
 */
export function reduceRelations(
  groups: readonly Alternatives[],
  arch: string,
  profiles: readonly string[] = [],
): Alternatives[] {
  const active = new Set(profiles);
  const applies = (r: Relation): boolean => {
    if (r.archRestriction) {
      const hit = r.archRestriction.archs.some((a) => archMatches(arch, a));
      if (hit === r.archRestriction.negated) return false;
    }
    if (r.profiles) {
      return r.profiles.some((conj) => conj.every((t) => active.has(t.name) !== t.negated));
    }
    return true;
  };
  return groups.map((g) => g.filter(applies)).filter((g) => g.length > 0);
}

/** Renders a relation as it would appear in a control field (`libc6:any (>= 2.36)`). */
export function formatRelation(r: Relation): string {
  let s = r.name;
  if (r.archQualifier) s += `:${r.archQualifier}`;
  if (r.constraint) s += ` (${r.constraint.op} ${r.constraint.text})`;
  if (r.archRestriction)
    s += ` [${r.archRestriction.archs.map((a) => (r.archRestriction!.negated ? `!${a}` : a)).join(' ')}]`;
  for (const conj of r.profiles ?? [])
    s += ` <${conj.map((t) => (t.negated ? `!${t.name}` : t.name)).join(' ')}>`;
  return s;
}

/** Renders an OR-group (`a | b (>= 1)`). */
export function formatAlternatives(g: Alternatives): string {
  return g.map(formatRelation).join(' | ');
}
