import type { SymbolUser } from './audit.ts';
import type { Classification } from './classify.ts';
import { type LintFinding, lintSummary } from './lint.ts';
import type { PolicyResult } from './policy.ts';
import type { AuditReport } from './schema.ts';

export interface TableOptions {
  /** Emit ANSI colours (green good, yellow partial, red bad), as checksec does on a terminal. */
  readonly color?: boolean;
}

type Cell = readonly [text: string, tone: 'good' | 'warn' | 'bad' | 'plain'];
const TONES = { good: 32, warn: 33, bad: 31, plain: 0 } as const;

/**
 * Returns a checksec-style table of the report (one row per ELF file, sorted by path) followed by errors and
 * violations, as text ending in a newline. Column meanings are those of `checksec --file`.
 */
export function renderTable(report: AuditReport, options: TableOptions = {}): string {
  const head = [
    'RELRO',
    'STACK CANARY',
    'NX',
    'PIE',
    'RPATH',
    'RUNPATH',
    'Symbols',
    'FORTIFY',
    'Fortified',
    'Fortifiable',
    'CET',
    'Libs',
    'FILE',
  ];
  const rows: Cell[][] = report.files.map((f) => {
    const h = f.hardening;
    const cet =
      h.ibt.value === null
        ? h.bti.value === null
          ? (['n/a', 'plain'] as const)
          : ([
              `${h.bti.value ? 'BTI' : 'no BTI'}${h.pac.value ? ' PAC' : ''}`,
              h.bti.value ? 'good' : 'bad',
            ] as const)
        : h.ibt.value && h.shstk.value
          ? (['IBT SHSTK', 'good'] as const)
          : h.ibt.value || h.shstk.value
            ? ([h.ibt.value ? 'IBT' : 'SHSTK', 'warn'] as const)
            : (['No CET', 'bad'] as const);
    const missing = f.missing.length + (f.missingInterpreter ? 1 : 0);
    return [
      h.relro.value === 'full'
        ? ['Full RELRO', 'good']
        : h.relro.value === 'partial'
          ? ['Partial RELRO', 'warn']
          : ['No RELRO', 'bad'],
      h.canary.value ? ['Canary found', 'good'] : ['No canary found', 'bad'],
      h.nx.value ? ['NX enabled', 'good'] : ['NX disabled', 'bad'],
      h.pie.value === 'pie'
        ? ['PIE enabled', 'good']
        : h.pie.value === 'dso'
          ? ['DSO', 'warn']
          : h.pie.value === 'no'
            ? ['No PIE', 'bad']
            : [h.pie.value.toUpperCase(), 'warn'],
      h.rpath.value ? ['RPATH', 'bad'] : ['No RPATH', 'good'],
      h.runpath.value ? ['RUNPATH', 'bad'] : ['No RUNPATH', 'good'],
      h.stripped.value ? ['No Symbols', 'good'] : ['Symbols', 'bad'],
      h.fortify.value ? ['Yes', 'good'] : ['No', 'bad'],
      [String(h.fortify.fortified ?? 'unknown'), 'plain'],
      [String(h.fortify.fortifiable ?? 'unknown'), 'plain'],
      cet,
      f.libraries === null
        ? ['-', 'plain']
        : missing > 0
          ? [`${missing} missing`, 'bad']
          : [String(f.libraries.length), 'plain'],
      [
        f.violations.length ? `${f.path} (violates ${f.violations.join(',')})` : f.path,
        f.violations.length ? 'bad' : 'plain',
      ],
    ] as Cell[];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]![0].length)));
  const paint = ([t, tone]: Cell, w: number, last: boolean) => {
    const padded = last ? t : t.padEnd(w);
    return options.color && tone !== 'plain' ? `\x1b[${TONES[tone]}m${padded}\x1b[0m` : padded;
  };
  const lines = [head.map((h, i) => (i === head.length - 1 ? h : h.padEnd(widths[i]!))).join('  ')];
  for (const r of rows) lines.push(r.map((c, i) => paint(c, widths[i]!, i === r.length - 1)).join('  '));
  for (const e of report.errors) lines.push(`error: ${e.path}: ${e.code}: ${e.message}`);
  for (const f of report.files) {
    if (f.missingInterpreter) lines.push(`missing: ${f.path}: interpreter ${f.missingInterpreter}`);
    for (const m of f.missing) lines.push(`missing: ${f.path}: ${m}`);
  }
  const s = report.summary;
  lines.push(
    `${s.files} ELF files, ${s.errors} unreadable, ${s.missingLibraries} with missing libraries${report.require ? `, ${s.violations} violating ${report.require}` : ''}`,
  );
  if (s.passed === false)
    lines.push(
      `gate failed: ${[s.violations > 0 ? `${s.violations} violating` : '', s.errors > 0 ? `${s.errors} could not be checked` : ''].filter(Boolean).join(', ')}`,
    );
  return `${lines.join('\n')}\n`;
}

/** Returns `path  symbol@version  library  package` lines for `pare audit --uses`, ending in a newline. */
export function renderUsers(users: readonly SymbolUser[]): string {
  return users
    .map(
      (u) => `${u.path}\t${u.symbol}${u.version ? `@${u.version}` : ''}\t${u.library}\t${u.package ?? '-'}\n`,
    )
    .join('');
}

/**
 * Returns the lint findings (one line each: severity, id, short name, message, layer) and the classification with
 * its evidence, ending in a newline. Accepted findings are listed as such and not counted.
 */
export function renderLint(
  findings: readonly LintFinding[],
  classification: Classification,
  options: TableOptions = {},
): string {
  const tone = { fatal: TONES.bad, warn: TONES.warn, info: TONES.plain } as const;
  const lines = ['', 'LINT'];
  for (const f of findings) {
    const sev = f.accepted ? 'accepted' : f.severity.toUpperCase();
    const label = `${sev.padEnd(8)} ${f.id.padEnd(11)} ${f.name}`;
    const painted =
      options.color && !f.accepted && tone[f.severity] !== 0
        ? `\x1b[${tone[f.severity]}m${label}\x1b[0m`
        : label;
    const layer = f.evidence.layer ? ` [layer ${f.evidence.layer.slice(0, 19)}]` : '';
    lines.push(`${painted}  ${f.message}${layer}`);
  }
  const s = lintSummary(findings);
  lines.push(`${s.fatal} fatal, ${s.warn} warn, ${s.info} info, ${s.accepted} accepted`);
  lines.push('', `CLASS ${classification.class}`);
  for (const e of classification.evidence) lines.push(`  ${e}`);
  if (!s.passed) lines.push(`lint failed: ${s.fatal} fatal finding${s.fatal === 1 ? '' : 's'} not accepted`);
  return `${lines.join('\n')}\n`;
}

/** Returns the policy violations (new ones first marked, baseline ones as such) and the verdict, ending in a newline. */
export function renderPolicy(policy: PolicyResult, options: TableOptions = {}): string {
  const lines = ['', `POLICY ${policy.file}`];
  for (const v of policy.violations) {
    const label = v.baseline ? 'baseline' : 'VIOLATES';
    const painted = options.color && !v.baseline ? `\x1b[${TONES.bad}m${label}\x1b[0m` : label;
    lines.push(`${painted} ${v.rule.padEnd(8)} ${v.message}`);
  }
  const fresh = policy.violations.filter((v) => !v.baseline).length;
  lines.push(
    policy.passed
      ? `policy passed (${policy.violations.length} violation${policy.violations.length === 1 ? '' : 's'} in the baseline)`
      : `policy failed: ${fresh} violation${fresh === 1 ? '' : 's'}`,
  );
  return `${lines.join('\n')}\n`;
}
