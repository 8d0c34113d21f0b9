import type { Decision } from './decide.ts';

/** The summary table: findings by status and justification with counts, then one line per finding. */
export function renderSummary(decisions: readonly Decision[]): string {
  const counts = new Map<string, number>();
  for (const d of decisions) {
    const k = d.justification ? `${d.status} / ${d.justification}` : d.status;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const order = [
    'not_affected / component_not_present',
    'not_affected / vulnerable_code_not_present',
    'not_affected / vulnerable_code_not_in_execute_path',
    'affected',
    'under_investigation',
  ];
  const rows = order.map((k) => [k, String(counts.get(k) ?? 0)] as const);
  rows.push(['total', String(decisions.length)]);
  const w = Math.max(...rows.map((r) => r[0].length));
  let out = `${'STATUS'.padEnd(w)}  COUNT\n`;
  for (const [k, n] of rows) out += `${k.padEnd(w)}  ${n.padStart(5)}\n`;
  if (decisions.length === 0) return out;
  const lines = decisions.map((d) => [
    d.finding.id,
    d.finding.package,
    d.justification ? `${d.status}/${d.justification}` : d.status,
    d.evidence.importers.length > 0 ? `${d.evidence.importers.length} importer(s)` : '',
  ]);
  const ws = [0, 1, 2].map((i) => Math.max(...lines.map((l) => l[i]!.length), 4));
  out += `\n${'CVE'.padEnd(ws[0]!)}  ${'PACKAGE'.padEnd(ws[1]!)}  ${'DECISION'.padEnd(ws[2]!)}  EVIDENCE\n`;
  for (const l of lines)
    out +=
      `${l[0]!.padEnd(ws[0]!)}  ${l[1]!.padEnd(ws[1]!)}  ${l[2]!.padEnd(ws[2]!)}  ${l[3]}`.trimEnd() + '\n';
  return out;
}

/** The evidence chain of the decisions about one CVE (`pare vex --explain CVE`). */
export function renderExplain(decisions: readonly Decision[], id: string): string {
  const mine = decisions.filter((d) => d.finding.id === id);
  if (mine.length === 0) return `${id}: not in the report\n`;
  let out = '';
  for (const d of mine) {
    const e = d.evidence;
    out += `${id} in ${d.finding.package}: ${d.status}${d.justification ? ` (${d.justification})` : ''}\n`;
    out += `  package:      ${e.package ?? 'not installed'}\n`;
    if (d.purl) out += `  purl:         ${d.purl}\n`;
    out += `  data:         ${e.data.length > 0 ? e.data.join('; ') : 'none'}\n`;
    out += `  libraries:    ${e.libraries.length > 0 ? e.libraries.join(', ') : 'none in the image'}\n`;
    out += `  importers:    ${e.importers.length > 0 ? '' : 'none'}\n`;
    for (const i of e.importers) out += `    ${i}\n`;
    out += `  dlopen users: ${e.dlopenUsers.length > 0 ? '' : 'none considered'}\n`;
    for (const u of e.dlopenUsers) out += `    ${u}\n`;
    out += `  ffi modules:  ${e.ffi.length > 0 ? e.ffi.join(', ') : 'none'}\n`;
    out += '  steps:\n';
    for (const s of e.steps) out += `    - ${s}\n`;
    out += `  impact:       ${d.impact}\n`;
    if (d.action) out += `  action:       ${d.action}\n`;
  }
  return out;
}
