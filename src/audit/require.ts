import { UsageError } from '../errors.ts';
import type { AuditHardening } from './schema.ts';

/** One requirement of a `--require` gate. */
export interface Requirement {
  /** As written, e.g. `relro=full`. */
  readonly text: string;
  /** Returns true when the facts meet the requirement. */
  readonly check: (h: AuditHardening) => boolean;
}

const RULES: Readonly<Record<string, (value: string | undefined) => Requirement['check']>> = {
  relro: (v) => {
    if (v === undefined || v === 'partial') return (h) => h.relro.value !== 'none';
    if (v === 'full') return (h) => h.relro.value === 'full';
    throw new UsageError(
      'USAGE',
      `cannot parse requirement "relro=${v}": use relro, relro=partial or relro=full`,
    );
  },
  // Shared objects are position independent by construction; only ET_EXEC (and static non-PIE) fails.
  pie: () => (h) => h.pie.value === 'pie' || h.pie.value === 'dso',
  nx: () => (h) => h.nx.value,
  canary: () => (h) => h.canary.value,
  fortify: () => (h) => h.fortify.value,
  'bind-now': () => (h) => h.bindNow.value,
  ibt: () => (h) => h.ibt.value !== false,
  shstk: () => (h) => h.shstk.value !== false,
  cet: () => (h) => h.ibt.value !== false && h.shstk.value !== false,
  bti: () => (h) => h.bti.value !== false,
  pac: () => (h) => h.pac.value !== false,
  'no-rpath': () => (h) => h.rpath.value === null,
  'no-runpath': () => (h) => h.runpath.value === null,
  stripped: () => (h) => h.stripped.value,
  'stack-clash': () => (h) => h.stackClash.value === 'yes',
};

/** Names accepted in a `--require` spec. */
export const REQUIREMENT_NAMES: readonly string[] = Object.keys(RULES).sort();

/**
 * Parses a gate such as `relro=full,pie,nx,canary`. Machine-specific facts (ibt, shstk, bti, pac) pass on machines
 * where they do not apply. Throws UsageError USAGE for an unknown name.
 */
export function parseRequirements(spec: string): Requirement[] {
  const out: Requirement[] = [];
  for (const raw of spec.split(',')) {
    const text = raw.trim();
    if (!text) continue;
    const [name, value] = text.split('=', 2) as [string, string | undefined];
    const rule = RULES[name];
    if (!rule)
      throw new UsageError(
        'USAGE',
        `cannot parse requirement ${JSON.stringify(text)}: unknown name; use one of ${REQUIREMENT_NAMES.join(', ')}`,
      );
    out.push({ text, check: rule(value) });
  }
  return out;
}

/** Returns the requirements `h` violates, as written. */
export function violations(h: AuditHardening, reqs: readonly Requirement[]): string[] {
  return reqs.filter((r) => !r.check(h)).map((r) => r.text);
}
