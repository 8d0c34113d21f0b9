import picomatch from 'picomatch';
import { z } from 'zod';
import { parseYamlFile } from '../config/index.ts';
import { UsageError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import type { ImageClass } from './classify.ts';
import { LINT_RULES } from './lint.ts';
import { parseRequirements, REQUIREMENT_NAMES, violations } from './require.ts';
import type { AuditReport } from './schema.ts';

/**
 * The policy gate (`pare audit --policy FILE`): a YAML file of requirements on every ELF file (with per-path
 * overrides), denied lint rules, allowed classes and a size limit. Violations are listed with a stable key; a
 * `--baseline` report accepts the violations (and lint findings) it already had, so CI fails only on new ones.
 */

const CLASSES = ['full', 'slim', 'shell-less', 'binary-less', 'distroless', 'scratch'] as const;
const RULE_KEYS = [...new Set(LINT_RULES.flatMap((r) => [r.id, r.name]))];

const requireSchema = z
  .object(
    Object.fromEntries(
      REQUIREMENT_NAMES.map((n) => [
        n,
        (n === 'relro' ? z.union([z.enum(['full', 'partial']), z.boolean()]) : z.boolean()).optional(),
      ]),
    ),
  )
  .strict();

const SIZE = /^(\d+)\s*(B|KiB|MiB|GiB|kB|MB|GB)?$/;
const UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  kB: 1e3,
  MB: 1e6,
  GB: 1e9,
};

export const policySchema = z
  .object({
    require: requireSchema.optional(),
    overrides: z
      .array(z.object({ paths: z.array(z.string().startsWith('/')).min(1), require: requireSchema }).strict())
      .optional(),
    deny: z
      .array(z.string().refine((s) => RULE_KEYS.includes(s), { message: 'not a lint rule id or short name' }))
      .optional(),
    classes: z.array(z.enum(CLASSES)).min(1).optional(),
    maxSize: z
      .union([
        z.number().int().nonnegative(),
        z.string().regex(SIZE, 'want a size such as 50MiB, 2GB or 1048576'),
      ])
      .optional(),
  })
  .strict();

export type Policy = z.infer<typeof policySchema>;

/** Parses a policy file's text; a bad one is a UsageError CONFIG_INVALID naming `path:line:col` (exit 2). */
export function parsePolicy(text: string, path: string): Policy {
  return parseYamlFile(
    text,
    path,
    policySchema,
    'a policy has require, overrides, deny, classes and maxSize (src/audit/README.md)',
  );
}

function bytes(size: number | string): number {
  if (typeof size === 'number') return size;
  const m = SIZE.exec(size)!;
  return Number(m[1]) * UNITS[m[2] ?? 'B']!;
}

/** The `--require` spec a policy's require map means: `relro: full` → relro=full, `pie: true` → pie. */
function spec(req: z.infer<typeof requireSchema> | undefined): string {
  return Object.entries(req ?? {})
    .filter(([, v]) => v !== false && v !== undefined)
    .map(([k, v]) => (k === 'relro' && typeof v === 'string' ? `relro=${v}` : k))
    .join(',');
}

/** True when the policy needs the stack-clash code scan. */
export function policyNeedsCodeScan(p: Policy): boolean {
  return [p.require, ...(p.overrides ?? []).map((o) => o.require)].some((r) => r?.['stack-clash'] === true);
}

export interface PolicyViolation {
  /** `require`, `deny`, `classes` or `maxSize`. */
  readonly rule: string;
  /** What violates: a path, a class, a size. */
  readonly subject: string;
  readonly message: string;
  /** Stable identity, compared with a baseline: `rule:detail:subject`. */
  readonly key: string;
  /** True when the baseline report already had this violation (or lint finding). */
  readonly baseline: boolean;
}

export interface PolicyResult {
  readonly file: string;
  readonly violations: readonly PolicyViolation[];
  /** False when a violation is not in the baseline. */
  readonly passed: boolean;
}

/** The keys a baseline report accepts: its policy violations' keys and its lint findings'. */
export function baselineKeys(text: string, file: string): Set<string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError('USAGE', `cannot read baseline ${file}: not JSON (${(e as Error).message})`);
  }
  const d = doc as { schema?: unknown; policy?: { violations?: unknown }; lint?: { findings?: unknown } };
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.schema !== 'string' ||
    !d.schema.startsWith('pare.audit/')
  )
    throw new UsageError(
      'USAGE',
      `cannot use baseline ${file}: not a pare audit JSON report (no "schema": "pare.audit/…"); write one with pare audit --json`,
    );
  const keys = new Set<string>();
  for (const v of Array.isArray(d.policy?.violations) ? d.policy.violations : [])
    if (typeof (v as { key?: unknown }).key === 'string') keys.add((v as { key: string }).key);
  for (const f of Array.isArray(d.lint?.findings) ? d.lint.findings : []) {
    const x = f as { name?: unknown; evidence?: { path?: unknown; key?: unknown } };
    if (typeof x.name === 'string') keys.add(lintKey(x.name, x.evidence?.path, x.evidence?.key));
  }
  return keys;
}

export function lintKey(name: string, path: unknown, key: unknown): string {
  return `deny:${name}:${typeof path === 'string' ? path : typeof key === 'string' ? key : ''}`;
}

/** The unpacked size of a tree: regular files' bytes (a hardlink adds nothing). */
export function treeSize(tree: Tree): number {
  let n = 0;
  for (const p of tree.paths()) {
    const e = tree.get(p)!;
    if (e.kind === 'file') n += e.content.size;
  }
  return n;
}

/**
 * Checks an audit report (with lint and classification) against a policy. `size` is the image's unpacked size;
 * `baseline` the keys a previous report accepts.
 */
export function checkPolicy(
  policy: Policy,
  file: string,
  report: AuditReport,
  size: number,
  baseline: ReadonlySet<string> = new Set(),
): PolicyResult {
  const out: Omit<PolicyViolation, 'baseline'>[] = [];
  const base = parseRequirements(spec(policy.require));
  const overrides = (policy.overrides ?? []).map((o) => ({
    match: picomatch(o.paths, { dot: true }),
    reqs: parseRequirements(spec(o.require)),
  }));
  for (const f of report.files) {
    // The last override whose paths match replaces the top-level require for that file.
    const o = overrides.filter((x) => x.match(f.path)).pop();
    for (const v of violations(f.hardening, o ? o.reqs : base))
      out.push({
        rule: 'require',
        subject: f.path,
        message: `${f.path} does not meet ${v}`,
        key: `require:${v}:${f.path}`,
      });
  }
  // Fail closed: a file that could not be read cannot be shown to meet the requirements.
  if (base.length > 0 || overrides.length > 0)
    for (const e of report.errors)
      out.push({
        rule: 'require',
        subject: e.path,
        message: `${e.path} could not be checked (${e.code})`,
        key: `require:unreadable:${e.path}`,
      });
  if (policy.deny?.length || policy.classes?.length) {
    if (!report.lint || !report.classification)
      throw new UsageError(
        'USAGE',
        `${file}: deny and classes need an image target with lint (an image reference, not a host path; no --no-lint)`,
      );
  }
  const denied = new Set(policy.deny ?? []);
  for (const f of report.lint?.findings ?? []) {
    if (f.accepted || !(denied.has(f.id) || denied.has(f.name))) continue;
    const subject = f.evidence.path ?? f.evidence.key ?? f.evidence.detail ?? '';
    out.push({
      rule: 'deny',
      subject,
      message: `${f.name} (${f.id}): ${f.message}`,
      key: lintKey(f.name, f.evidence.path, f.evidence.key),
    });
  }
  const cls = report.classification?.class as ImageClass | undefined;
  if (policy.classes && cls && !policy.classes.includes(cls))
    out.push({
      rule: 'classes',
      subject: cls,
      message: `the image is ${cls}; the policy allows ${policy.classes.join(', ')} (${report.classification!.evidence.join('; ')})`,
      key: `classes:${cls}`,
    });
  if (policy.maxSize !== undefined && size > bytes(policy.maxSize))
    out.push({
      rule: 'maxSize',
      subject: String(size),
      message: `the image unpacks to ${size} bytes; the policy allows ${policy.maxSize} (${bytes(policy.maxSize)} bytes)`,
      key: 'maxSize',
    });
  const result = out.map((v) => ({ ...v, baseline: baseline.has(v.key) }));
  return { file, violations: result, passed: result.every((v) => v.baseline) };
}
