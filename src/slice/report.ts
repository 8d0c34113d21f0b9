import { SliceError } from '../errors.ts';
import type { Dropped, PackageSummary, Reason, SliceResult, SliceRoot, SliceTotals, Why } from './slice.ts';

/**
 * The slice report: what was kept and why, as JSON a build stores next to its output (`pare.slice/v1`), and the two
 * human renderings: `pare why-kept PATH` (the chain from a root to the file) and the build summary (files and bytes
 * removed per package). Pure; the CLI prints.
 */

export const SLICE_REPORT_VERSION = 'pare.slice/v1';

export interface SliceReport {
  readonly version: typeof SLICE_REPORT_VERSION;
  readonly roots: readonly SliceRoot[];
  readonly before: SliceTotals;
  readonly after: SliceTotals;
  /** Per package (status.d key), sorted by key. */
  readonly packages: Readonly<Record<string, PackageSummary>>;
  /** Path → reason, in tree order. */
  readonly kept: Readonly<Record<string, Reason>>;
  /** Paths `drop:` removed although something wanted them (absent when none). */
  readonly dropped?: Readonly<Record<string, Dropped>>;
  readonly notes: readonly string[];
}

/** Returns the JSON-ready report of a slice (deterministic: maps are emitted in their sorted order). */
export function sliceReport(result: SliceResult): SliceReport {
  return {
    version: SLICE_REPORT_VERSION,
    roots: result.roots,
    before: result.before,
    after: result.after,
    packages: Object.fromEntries(result.summary),
    kept: Object.fromEntries(result.kept),
    // Only when there are drops: reports of slices without drop: stay byte-identical.
    ...(result.dropped.size > 0 ? { dropped: Object.fromEntries(result.dropped) } : {}),
    notes: result.notes,
  };
}

const WHYS = new Set<Why>([
  'root',
  'keep-glob',
  'elf-needed',
  'interpreter',
  'shebang',
  'package-data',
  'nss',
  'gconv',
  'python-stdlib',
  'node-builtin',
  'ca-bundle',
  'zoneinfo',
  'locale',
  'license',
  'dpkg-metadata',
  'base',
  'probe',
  'parent-dir',
  'symlink-chain',
]);

/** Parses a stored report; throws SLICE_REPORT_INVALID naming `source` and what is wrong. */
export function parseSliceReport(text: string, source = 'slice report'): SliceReport {
  const fail = (why: string, cause?: unknown) =>
    new SliceError('SLICE_REPORT_INVALID', `cannot read ${JSON.stringify(source)}: ${why}`, {
      path: source,
      cause,
    });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw fail('not JSON', e);
  }
  const r = v as Partial<SliceReport>;
  if (typeof v !== 'object' || v === null || r.version !== SLICE_REPORT_VERSION)
    throw fail(`want "version": ${JSON.stringify(SLICE_REPORT_VERSION)}`);
  if (typeof r.kept !== 'object' || r.kept === null) throw fail('"kept" must be an object');
  for (const [p, reason] of Object.entries(r.kept)) {
    if (!p.startsWith('/') || typeof reason !== 'object' || reason === null || !WHYS.has(reason.why))
      throw fail(`bad entry for ${JSON.stringify(p)} in "kept"`);
  }
  if (r.dropped !== undefined) {
    if (typeof r.dropped !== 'object' || r.dropped === null) throw fail('"dropped" must be an object');
    for (const [p, d] of Object.entries(r.dropped)) {
      const w = (d as Partial<Dropped> | null)?.wanted;
      if (
        !p.startsWith('/') ||
        typeof d?.glob !== 'string' ||
        typeof w !== 'object' ||
        w === null ||
        !WHYS.has(w.why)
      )
        throw fail(`bad entry for ${JSON.stringify(p)} in "dropped"`);
    }
  }
  if (!Array.isArray(r.roots) || typeof r.packages !== 'object' || !Array.isArray(r.notes))
    throw fail('"roots", "packages" and "notes" are required');
  return r as SliceReport;
}

const LABEL: Record<Why, string> = {
  root: 'root',
  'keep-glob': 'matched keep glob',
  'elf-needed': 'library needed by',
  interpreter: 'ELF interpreter of',
  shebang: '#! interpreter of',
  'package-data': 'package configuration, package kept for',
  nss: 'NSS (nsswitch.conf)',
  gconv: 'gconv module (iconv_open) for',
  'python-stdlib': 'Python standard library of',
  'node-builtin': 'Node builtin loaded at start-up by',
  'ca-bundle': 'CA bundle for',
  zoneinfo: 'time zone data for',
  locale: 'locale data for',
  license: 'license of kept package',
  'dpkg-metadata': 'dpkg metadata of kept package',
  base: 'always kept',
  probe: 'touched by probe',
  'parent-dir': 'directory of',
  'symlink-chain': 'symlink on the way to',
};

/** Most steps shown: chains are short; a longer one means a cycle of reasons. */
const MAX_CHAIN = 64;

/**
 * Returns the chain from a root to `path` as text, one step per line, or a line saying it was not kept. `path` may
 * name a symlink or a non-canonical spelling; it is looked up as given, then under merged-/usr spellings.
 */
export function formatWhyKept(result: SliceResult | SliceReport, path: string): string {
  const kept: ReadonlyMap<string, Reason> =
    'version' in result ? new Map(Object.entries(result.kept)) : result.kept;
  const dropped: ReadonlyMap<string, Dropped> =
    'version' in result ? new Map(Object.entries(result.dropped ?? {})) : result.dropped;
  const candidates = [path, path.replace(/^\/(bin|sbin|lib|lib64|lib32)\//, '/usr/$1/')];
  const start = candidates.find((c) => kept.has(c));
  const lines: string[] = [];
  const seen = new Set<string>();
  let p: string | undefined = start;
  let indent = '';
  if (!start) {
    const gone = candidates.find((c) => dropped.has(c));
    if (!gone) return `${path}: not kept (nothing in the image needs it)\n`;
    // A dropped path: say which glob removed it, then the chain that wanted it.
    const d = dropped.get(gone)!;
    const detail = d.wanted.detail ? ` (${d.wanted.detail})` : '';
    lines.push(`${gone}: dropped by slice.drop ${JSON.stringify(d.glob)}`);
    lines.push(
      `  ← wanted as ${LABEL[d.wanted.why]}${d.wanted.from !== undefined ? ` ${d.wanted.from}` : ''}${detail}`,
    );
    seen.add(gone);
    p = d.wanted.from;
    indent = '  ';
  }
  while (p !== undefined && lines.length < MAX_CHAIN) {
    const r = kept.get(p);
    if (!r || seen.has(p)) break;
    seen.add(p);
    const detail = r.detail ? ` (${r.detail})` : '';
    if (lines.length === 0) lines.push(p);
    if (r.from !== undefined) lines.push(`${indent}  ← ${LABEL[r.why]} ${r.from}${detail}`);
    else lines.push(`${indent}  ← ${LABEL[r.why]}${detail}`);
    indent += '  ';
    p = r.from;
  }
  return `${lines.join('\n')}\n`;
}

/** Returns `n` bytes as B/KiB/MiB with one decimal (base 1024, no locale). */
function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * Returns the build summary: one row per package (files and bytes before → after, removed), dropped packages
 * marked, then the totals and the notes. Sorted by bytes removed, largest first (ties by name).
 */
export function formatSliceSummary(result: SliceResult | SliceReport): string {
  const pkgs: [string, PackageSummary][] =
    'version' in result ? Object.entries(result.packages) : [...result.summary];
  pkgs.sort(
    ([a, x], [b, y]) => y.bytesBefore - y.bytesAfter - (x.bytesBefore - x.bytesAfter) || (a < b ? -1 : 1),
  );
  const rows: string[][] = [['PACKAGE', 'FILES', 'SIZE', 'REMOVED', '']];
  for (const [k, s] of pkgs) {
    rows.push([
      k,
      `${s.filesBefore} → ${s.filesAfter}`,
      `${bytes(s.bytesBefore)} → ${bytes(s.bytesAfter)}`,
      bytes(s.bytesBefore - s.bytesAfter),
      !s.kept ? 'dropped' : s.sliced ? 'sliced' : 'whole',
    ]);
  }
  const { before, after } = result;
  rows.push([
    'total',
    `${before.files} → ${after.files}`,
    `${bytes(before.bytes)} → ${bytes(after.bytes)}`,
    bytes(before.bytes - after.bytes),
    before.bytes > 0 ? `${((100 * after.bytes) / before.bytes).toFixed(1)}% kept` : '',
  ]);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  let out = rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(w[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
  out += '\n';
  for (const n of result.notes) out += `note: ${n}\n`;
  return out;
}
