import { parseControl } from '../debian/control.ts';
import { debianExpressionToSpdx, licenseRefsIn } from './licenses.ts';

/**
 * Licenses from a Debian machine-readable copyright file (`/usr/share/doc/<pkg>/copyright`, DEP-5). Files that are
 * not machine-readable (no `Format:` header) or do not parse give no licenses: the SBOM then says NOASSERTION rather
 * than guess from prose.
 */

export interface CopyrightLicenses {
  /** The SPDX expression for the whole package: the distinct per-paragraph expressions joined with AND; undefined when none. */
  readonly expression: string | undefined;
  /** `LicenseRef-…` ids the expression uses, with the license text when the file has a standalone paragraph for it. */
  readonly refs: readonly { readonly id: string; readonly name: string; readonly text: string | undefined }[];
}

const NONE: CopyrightLicenses = { expression: undefined, refs: [] };

/** Returns the licenses declared in DEP-5 `text`. Never throws: unreadable files give no licenses. */
export function parseCopyright(text: string): CopyrightLicenses {
  let paras: ReturnType<typeof parseControl>;
  try {
    paras = parseControl(text, { comments: true });
  } catch {
    return NONE;
  }
  const header = paras[0];
  if (!header?.get('Format')?.includes('copyright-format')) return NONE;
  const expressions: string[] = [];
  const texts = new Map<string, string>();
  const refNames = new Map<string, string>();
  for (const p of paras) {
    const lic = p.get('License');
    if (lic === undefined) continue;
    const nl = lic.indexOf('\n');
    const first = (nl < 0 ? lic : lic.slice(0, nl)).trim();
    const body = nl < 0 ? '' : lic.slice(nl + 1).trim();
    const expr = debianExpressionToSpdx(first);
    if (!expr) continue;
    // A paragraph with License but no Files is a standalone license text (DEP-5 §"Stand-alone License Paragraph").
    if (!p.has('Files') && p !== header) {
      if (body) texts.set(expr, body);
      for (const r of licenseRefsIn(expr)) refNames.set(r, first);
      continue;
    }
    if (body && !texts.has(expr)) texts.set(expr, body);
    for (const r of licenseRefsIn(expr)) refNames.set(r, first);
    if (!expressions.includes(expr)) expressions.push(expr);
  }
  if (expressions.length === 0) return NONE;
  const parts = [...expressions].sort();
  const expression =
    parts.length === 1 ? parts[0] : parts.map((e) => (/ (AND|OR) /.test(e) ? `(${e})` : e)).join(' AND ');
  const refs = licenseRefsIn(expression!).map((id) => ({
    id,
    name: refNames.get(id) ?? id.slice('LicenseRef-'.length),
    text: texts.get(id),
  }));
  return { expression, refs };
}
