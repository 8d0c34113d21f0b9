import { LINT_RULES, type Severity } from './lint.ts';
import type { AuditReport } from './schema.ts';

/**
 * The report as SARIF 2.1.0 (`pare audit --format sarif`), for GitHub code scanning and other SARIF readers. Every
 * result has a `ruleId` and a physical location whose artifact URI is the path in the image (`/` for findings about
 * the image config, with the config key as a logical location). Results: lint findings (accepted ones carry an
 * external suppression), `--require` violations (`require/NAME`), unreadable ELF files (`require/unreadable`, under a
 * gate) and policy violations (`policy/RULE`, baseline ones suppressed). test/audit/sarif.test.ts validates the output
 * against the official schema.
 */

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  fatal: 'error',
  warn: 'warning',
  info: 'note',
};

/** The SARIF rule id of a lint rule: its id, made hierarchical where several rules share one (CIS-DI-0010/secret-env). */
export function sarifRuleId(id: string, name: string): string {
  return LINT_RULES.filter((r) => r.id === id).length > 1 ? `${id}/${name}` : id;
}

function location(path: string | undefined, key?: string): Record<string, unknown> {
  return {
    physicalLocation: { artifactLocation: { uri: encodeURI(path ?? '/') } },
    ...(key ? { logicalLocations: [{ fullyQualifiedName: key, kind: 'member' }] } : {}),
  };
}

/** Returns the SARIF log of a report, as a JSON-serialisable object. */
export function toSarif(report: AuditReport, version: string): Record<string, unknown> {
  const rules: Record<string, unknown>[] = LINT_RULES.map((r) => ({
    id: sarifRuleId(r.id, r.name),
    name: r.name,
    shortDescription: { text: r.title },
    help: { text: r.fix },
    defaultConfiguration: { level: LEVEL[r.severity] },
  }));
  const results: Record<string, unknown>[] = [];
  for (const f of report.lint?.findings ?? [])
    results.push({
      ruleId: sarifRuleId(f.id, f.name),
      level: LEVEL[f.severity],
      message: { text: `${f.message}. Fix: ${f.fix}` },
      locations: [location(f.evidence.path, f.evidence.key)],
      ...(f.evidence.layer ? { properties: { layer: f.evidence.layer } } : {}),
      ...(f.accepted
        ? { suppressions: [{ kind: 'external', justification: '--accept or ignore file' }] }
        : {}),
    });
  const requireRules = new Set<string>();
  for (const file of report.files)
    for (const v of file.violations) {
      requireRules.add(`require/${v}`);
      results.push({
        ruleId: `require/${v}`,
        level: 'error',
        message: { text: `${file.path} does not meet ${v}` },
        locations: [location(file.path)],
      });
    }
  if (report.require)
    for (const e of report.errors) {
      requireRules.add('require/unreadable');
      results.push({
        ruleId: 'require/unreadable',
        level: 'error',
        message: { text: `${e.path} could not be checked: ${e.code}: ${e.message}` },
        locations: [location(e.path)],
      });
    }
  const policyRules = new Set<string>();
  for (const v of report.policy?.violations ?? []) {
    // deny violations repeat a lint result already listed; the others are the policy's own.
    if (v.rule === 'deny') continue;
    policyRules.add(`policy/${v.rule}`);
    results.push({
      ruleId: `policy/${v.rule}`,
      level: 'error',
      message: { text: v.message },
      locations: [location(v.rule === 'require' ? v.subject : undefined)],
      ...(v.baseline
        ? { suppressions: [{ kind: 'external', justification: 'in the --baseline report' }] }
        : {}),
    });
  }
  for (const id of [...requireRules, ...policyRules].sort())
    rules.push({
      id,
      shortDescription: {
        text: id.startsWith('require/') ? `ELF requirement ${id.slice(8)}` : `policy ${id.slice(7)}`,
      },
    });
  return {
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'pare', version, rules } },
        results,
        properties: {
          root: report.root,
          ...(report.classification ? { classification: report.classification.class } : {}),
        },
      },
    ],
  };
}
