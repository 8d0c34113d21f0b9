/**
 * `pare audit --format html`: the report as one self-contained HTML file. No network (a Content-Security-Policy of
 * `default-src 'none'` forbids every fetch, and nothing is referenced), no script (the filters are CSS `:checked`
 * rules, the treemaps server-drawn SVG), and every string that came from the image goes through `escapeHtml`.
 * The bytes depend only on the report: no clock, no locale, the report's order.
 */
import { formatBytes } from '../cli/format.ts';
import type { ImageSummary, SizeGroup } from './contents.ts';
import type { AuditFile, AuditReport } from './schema.ts';

/**
 * Escapes text for HTML content and double- or single-quoted attribute values. C0 controls (but tab and newline) and
 * DEL, which HTML parses as errors or drops, are shown as `\xNN` so a file name is displayed as it is.
 */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&#39;';
      default:
        return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}

/** A rectangle of a treemap: x, y, width, height. */
export type Rect = readonly [number, number, number, number];

/** The worst aspect ratio of a row of areas laid along a side of length `side` (squarified treemaps). */
function worst(row: readonly number[], side: number): number {
  const sum = row.reduce((a, b) => a + b, 0);
  let w = 0;
  for (const r of row) w = Math.max(w, (side * side * r) / (sum * sum), (sum * sum) / (side * side * r));
  return w;
}

/**
 * Lays out positive `values` (largest first) in the rectangle as a squarified treemap (Bruls, Huizing, van Wijk):
 * rows along the shorter side, each grown while it improves the worst aspect ratio. Areas are proportional to values.
 */
export function squarify(values: readonly number[], x: number, y: number, w: number, h: number): Rect[] {
  const total = values.reduce((a, b) => a + b, 0);
  if (total <= 0) return [];
  const areas = values.map((v) => (v * w * h) / total);
  const out: Rect[] = [];
  let i = 0;
  while (i < areas.length) {
    const side = Math.min(w, h);
    const row = [areas[i]!];
    let j = i + 1;
    while (j < areas.length && worst([...row, areas[j]!], side) <= worst(row, side)) row.push(areas[j++]!);
    const sum = row.reduce((a, b) => a + b, 0);
    const thick = side > 0 ? sum / side : 0;
    let off = 0;
    for (const a of row) {
      const len = thick > 0 ? a / thick : 0;
      out.push(w >= h ? [x, y + off, thick, len] : [x + off, y, len, thick]);
      off += len;
    }
    if (w >= h) {
      x += thick;
      w -= thick;
    } else {
      y += thick;
      h -= thick;
    }
    i = j;
  }
  return out;
}

/** Groups drawn one by one in a treemap; the rest are one `(N others)` box. */
const TREEMAP_MAX = 120;
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];

/** An SVG treemap of size groups; each box has its name, bytes and files as data attributes and a tooltip. */
function treemap(id: string, groups: readonly SizeGroup[]): string {
  const W = 960;
  const H = 360;
  const shown = groups.filter((g) => g.bytes > 0).slice(0, TREEMAP_MAX);
  const rest = groups.filter((g) => g.bytes > 0).slice(TREEMAP_MAX);
  const boxes = [...shown];
  if (rest.length > 0)
    boxes.push({
      name: `(${rest.length} others)`,
      version: null,
      files: rest.reduce((n, g) => n + g.files, 0),
      bytes: rest.reduce((n, g) => n + g.bytes, 0),
    });
  const rects = squarify(
    boxes.map((b) => b.bytes),
    0,
    0,
    W,
    H,
  );
  const f = (n: number) => String(Math.round(n * 10) / 10);
  const parts = rects.map(([x, y, w, h], i) => {
    const b = boxes[i]!;
    const label = `${b.name}${b.version ? ` ${b.version}` : ''}: ${formatBytes(b.bytes)}, ${b.files} file${b.files === 1 ? '' : 's'}`;
    const chars = Math.floor((w - 6) / 7);
    const text =
      w > 40 && h > 16 && chars > 2
        ? `<text x="${f(x + 3)}" y="${f(y + 13)}">${escapeHtml(b.name.length > chars ? `${b.name.slice(0, chars - 1)}…` : b.name)}</text>`
        : '';
    return `<g class="box" data-name="${escapeHtml(b.name)}" data-bytes="${b.bytes}" data-files="${b.files}"><rect x="${f(x)}" y="${f(y)}" width="${f(w)}" height="${f(h)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeHtml(label)}</title></rect>${text}</g>`;
  });
  return `<svg id="${id}" class="treemap" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" xmlns="http://www.w3.org/2000/svg">\n${parts.join('\n')}\n</svg>`;
}

/** True when a file misses one of checksec's basics (full RELRO, canary, NX, PIE/DSO) or violates --require. */
function weak(f: AuditFile): boolean {
  const h = f.hardening;
  return (
    h.relro.value !== 'full' ||
    !h.canary.value ||
    !h.nx.value ||
    h.pie.value === 'no' ||
    f.violations.length > 0 ||
    f.missing.length > 0 ||
    f.missingInterpreter !== null
  );
}

const yes = (ok: boolean, good: string, bad: string) =>
  `<td class="${ok ? 'good' : 'bad'}">${ok ? good : bad}</td>`;

function hardeningRow(f: AuditFile): string {
  const h = f.hardening;
  const relro = h.relro.value;
  const pie = h.pie.value;
  const missing = f.missing.length + (f.missingInterpreter ? 1 : 0);
  const libs = f.libraries === null ? '-' : missing > 0 ? `${missing} missing` : String(f.libraries.length);
  return [
    `<tr class="${weak(f) ? 'weak' : 'strong'}${f.violations.length > 0 ? ' violating' : ''}">`,
    `<td class="path">${escapeHtml(f.path)}</td>`,
    `<td>${escapeHtml(f.package ? `${f.package.package} ${f.package.version ?? ''}`.trim() : '-')}</td>`,
    `<td class="${relro === 'full' ? 'good' : relro === 'partial' ? 'warn' : 'bad'}">${relro}</td>`,
    yes(h.canary.value, 'yes', 'no'),
    yes(h.nx.value, 'yes', 'no'),
    `<td class="${pie === 'pie' ? 'good' : pie === 'no' ? 'bad' : 'warn'}">${escapeHtml(pie)}</td>`,
    yes(h.fortify.value, `${h.fortify.fortified ?? '?'}/${h.fortify.fortifiable ?? '?'}`, 'no'),
    `<td>${escapeHtml(h.linkage.value)}</td>`,
    `<td class="${missing > 0 ? 'bad' : ''}">${libs}</td>`,
    `<td class="bad">${escapeHtml(f.violations.join(', '))}</td>`,
    '</tr>',
  ].join('');
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.path{font-family:monospace;word-break:break-all}
.good{color:#17652b}.warn{color:#8a5a00}.bad{color:#b00020}
.fatal{background:#fde7ea}.accepted{color:#777}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dl.summary dt{font-weight:600}
.class{font-size:1.3em;font-weight:700}
.filter{margin:.5em 0}.filter label{margin-right:1em}
#f-weak:checked~table tr.strong{display:none}
#f-violating:checked~table tbody tr:not(.violating){display:none}
svg.treemap{max-width:100%;height:auto;font:11px sans-serif}svg.treemap text{fill:#fff;pointer-events:none}
svg.treemap rect{stroke:#fff;stroke-width:1}
code{font-family:monospace}
`;

/** The `<table>` of `rows` (already escaped cells) under `head` (plain labels). */
function table(head: readonly string[], rows: readonly string[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
}

function sizeTable(groups: readonly SizeGroup[], what: string): string {
  return table(
    [what, 'files', 'bytes'],
    groups.map(
      (g) =>
        `<tr><td class="path">${escapeHtml(g.name)}${g.version ? ` <span class="accepted">${escapeHtml(g.version)}</span>` : ''}</td><td>${g.files}</td><td data-bytes="${g.bytes}">${escapeHtml(formatBytes(g.bytes))}</td></tr>`,
    ),
  );
}

function imageSection(image: ImageSummary): string {
  const layers = table(
    ['#', 'digest', 'media type', 'stored', 'entries it last wrote', 'their bytes'],
    image.layers.map(
      (l, i) =>
        `<tr><td>${i + 1}</td><td class="path">${escapeHtml(l.digest)}</td><td>${escapeHtml(l.mediaType)}</td><td>${escapeHtml(formatBytes(l.size))}</td><td>${l.entries}</td><td>${escapeHtml(formatBytes(l.bytes))}</td></tr>`,
    ),
  );
  return [
    '<h2 id="size">Size</h2>',
    `<p>${image.files} regular files, ${escapeHtml(formatBytes(image.bytes))} (<span id="total-bytes">${image.bytes}</span> bytes) unpacked.</p>`,
    '<h3>By package</h3>',
    treemap('treemap-packages', image.packages),
    '<details><summary>table</summary>',
    sizeTable(image.packages, 'package'),
    '</details>',
    '<h3>By directory</h3>',
    treemap('treemap-directories', image.directories),
    '<details><summary>table</summary>',
    sizeTable(image.directories, 'directory'),
    '</details>',
    '<h2 id="layers">Layers</h2>',
    `<p>manifest <code>${escapeHtml(image.digest)}</code>, config <code>${escapeHtml(image.config)}</code></p>`,
    layers,
  ].join('\n');
}

/** Returns the report as one self-contained HTML document (UTF-8), ending in a newline. */
export function renderHtml(report: AuditReport): string {
  const s = report.summary;
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>pare audit: ${escapeHtml(report.root)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>pare audit: <code id="root">${escapeHtml(report.root)}</code></h1>`,
    '<h2 id="summary">Summary</h2>',
    '<dl class="summary">',
    `<dt>schema</dt><dd>${escapeHtml(report.schema)}</dd>`,
    `<dt>ELF files</dt><dd id="elf-files">${s.files}</dd>`,
    `<dt>unreadable</dt><dd>${s.errors}</dd>`,
    `<dt>with missing libraries</dt><dd>${s.missingLibraries}</dd>`,
  ];
  if (report.require)
    out.push(
      `<dt>--require ${escapeHtml(report.require)}</dt><dd class="${s.passed ? 'good' : 'bad'}">${s.violations} violating, ${s.passed ? 'passed' : 'failed'}</dd>`,
    );
  if (report.lint) {
    const l = report.lint.summary;
    out.push(
      `<dt>lint</dt><dd class="${l.passed ? 'good' : 'bad'}">${l.fatal} fatal, ${l.warn} warn, ${l.info} info, ${l.accepted} accepted</dd>`,
    );
  }
  if (report.policy)
    out.push(
      `<dt>policy</dt><dd class="${report.policy.passed ? 'good' : 'bad'}">${report.policy.passed ? 'passed' : 'failed'} (${report.policy.violations.length} violations)</dd>`,
    );
  out.push('</dl>');
  const c = report.classification;
  if (c) {
    out.push(
      '<h2 id="classification">Classification</h2>',
      `<p class="class" id="class">${escapeHtml(c.class)}</p>`,
      `<ul>${c.evidence.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul>`,
    );
  }
  out.push(
    '<h2 id="hardening">Hardening</h2>',
    '<div class="filter">',
    '<input type="radio" name="f" id="f-all" checked><label for="f-all">all files</label>',
    '<input type="radio" name="f" id="f-weak"><label for="f-weak">only files missing full RELRO, canary, NX, PIE or a library</label>',
    '<input type="radio" name="f" id="f-violating"><label for="f-violating">only --require violations</label>',
    table(
      ['path', 'package', 'RELRO', 'canary', 'NX', 'PIE', 'FORTIFY', 'linkage', 'libraries', 'violates'],
      report.files.map(hardeningRow),
    ),
    '</div>',
  );
  if (report.errors.length > 0)
    out.push(
      '<h3>Unreadable ELF files</h3>',
      table(
        ['path', 'code', 'message'],
        report.errors.map(
          (e) =>
            `<tr><td class="path">${escapeHtml(e.path)}</td><td>${escapeHtml(e.code)}</td><td>${escapeHtml(e.message)}</td></tr>`,
        ),
      ),
    );
  if (report.lint) {
    out.push(
      '<h2 id="lint">Lint</h2>',
      table(
        ['severity', 'id', 'rule', 'message', 'evidence', 'fix'],
        report.lint.findings.map((f) => {
          const ev = [
            f.evidence.path ? `path ${f.evidence.path}` : '',
            f.evidence.key ? `key ${f.evidence.key}` : '',
            f.evidence.layer ? `layer ${f.evidence.layer}` : '',
            f.evidence.detail ?? '',
          ]
            .filter(Boolean)
            .join('; ');
          return `<tr class="${f.accepted ? 'accepted' : f.severity}"><td>${f.accepted ? 'accepted' : f.severity}</td><td>${escapeHtml(f.id)}</td><td>${escapeHtml(f.name)}</td><td>${escapeHtml(f.message)}</td><td class="path">${escapeHtml(ev)}</td><td>${escapeHtml(f.fix)}</td></tr>`;
        }),
      ),
    );
  }
  if (report.policy)
    out.push(
      '<h2 id="policy">Policy</h2>',
      `<p>${escapeHtml(report.policy.file)}</p>`,
      table(
        ['rule', 'subject', 'message', 'baseline'],
        report.policy.violations.map(
          (v) =>
            `<tr class="${v.baseline ? 'accepted' : 'fatal'}"><td>${escapeHtml(v.rule)}</td><td class="path">${escapeHtml(v.subject)}</td><td>${escapeHtml(v.message)}</td><td>${v.baseline ? 'yes' : 'no'}</td></tr>`,
        ),
      ),
    );
  if (report.image) out.push(imageSection(report.image));
  out.push('</body>', '</html>');
  return `${out.join('\n')}\n`;
}
