import type { AuditFile } from '../../src/audit/index.ts';

/**
 * Returns what checksec.sh's `--output=json` says of a file, derived from pare's audit of it (checksec's field names
 * and spellings), so a parity test compares the two column by column.
 */
export function asChecksec(f: AuditFile): Record<string, string> {
  const h = f.hardening;
  return {
    relro: h.relro.value === 'none' ? 'no' : h.relro.value,
    canary: h.canary.value ? 'yes' : 'no',
    nx: h.nx.value ? 'yes' : 'no',
    pie: h.pie.value === 'pie' ? 'yes' : h.pie.value,
    rpath: h.rpath.value ? 'yes' : 'no',
    runpath: h.runpath.value ? 'yes' : 'no',
    symbols: h.stripped.value ? 'no' : 'yes',
    fortify_source: h.fortify.value ? 'yes' : 'no',
    fortified: String(h.fortify.fortified),
    'fortify-able': String(h.fortify.fortifiable),
  };
}
