import { SPDX } from '@cyclonedx/cyclonedx-library';

/**
 * Debian copyright-format 1.0 (DEP-5) short license names → SPDX
 * license ids (https://spdx.org/licenses/). DEP-5 writes "-or-later" as a trailing `+` and names a few licenses
 * differently (Expat = MIT, BSD-3-clause vs BSD-3-Clause). A name that neither maps nor is an SPDX id already
 * becomes `LicenseRef-<name>`, so nothing is dropped and nothing is guessed.
 */

/** Debian names that differ from their SPDX id (keys lowercase, without a trailing `+`). */
const DEBIAN_TO_SPDX: Readonly<Record<string, string>> = {
  'apache-2': 'Apache-2.0',
  'apache-2.0': 'Apache-2.0',
  apache: 'Apache-1.0',
  artistic: 'Artistic-1.0-Perl',
  'artistic-1': 'Artistic-1.0',
  'artistic-2': 'Artistic-2.0',
  'artistic-2.0': 'Artistic-2.0',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  'bsl-1.0': 'BSL-1.0',
  cc0: 'CC0-1.0',
  'cc0-1.0': 'CC0-1.0',
  'cddl-1.0': 'CDDL-1.0',
  'cpl-1.0': 'CPL-1.0',
  'efl-2': 'EFL-2.0',
  expat: 'MIT',
  mit: 'MIT',
  'gfdl-1.2': 'GFDL-1.2-only',
  'gfdl-1.3': 'GFDL-1.3-only',
  'gfdl-niv-1.2': 'GFDL-1.2-no-invariants-only',
  'gfdl-niv-1.3': 'GFDL-1.3-no-invariants-only',
  'gpl-1': 'GPL-1.0-only',
  'gpl-1.0': 'GPL-1.0-only',
  'gpl-2': 'GPL-2.0-only',
  'gpl-2.0': 'GPL-2.0-only',
  'gpl-3': 'GPL-3.0-only',
  'gpl-3.0': 'GPL-3.0-only',
  'lgpl-2': 'LGPL-2.0-only',
  'lgpl-2.0': 'LGPL-2.0-only',
  'lgpl-2.1': 'LGPL-2.1-only',
  'lgpl-3': 'LGPL-3.0-only',
  'lgpl-3.0': 'LGPL-3.0-only',
  'agpl-3': 'AGPL-3.0-only',
  'agpl-3.0': 'AGPL-3.0-only',
  'lppl-1.3c': 'LPPL-1.3c',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  'ofl-1.1': 'OFL-1.1',
  openssl: 'OpenSSL',
  'psf-2': 'PSF-2.0',
  'python-2.0': 'Python-2.0',
  'qpl-1.0': 'QPL-1.0',
  w3c: 'W3C',
  zlib: 'Zlib',
  'zope-2.1': 'ZPL-2.1',
  isc: 'ISC',
  x11: 'X11',
  sleepycat: 'Sleepycat',
  curl: 'curl',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
};

/** Families whose trailing `+` means "-or-later" (GNU licenses); for others `+` is kept in a LicenseRef. */
const OR_LATER_FAMILIES = new Set(['GPL', 'LGPL', 'AGPL', 'GFDL']);

/** Returns the SPDX id for one Debian short name (e.g. `GPL-2+` → `GPL-2.0-or-later`), or a `LicenseRef-…`. */
export function debianLicenseToSpdx(name: string): string {
  const trimmed = name.trim();
  const plus = trimmed.endsWith('+');
  const base = plus ? trimmed.slice(0, -1) : trimmed;
  const mapped = DEBIAN_TO_SPDX[base.toLowerCase()] ?? canonicalSpdxId(base);
  if (mapped) {
    if (!plus) return mapped;
    const family = mapped.split('-')[0]!;
    if (OR_LATER_FAMILIES.has(family) && mapped.endsWith('-only'))
      return mapped.replace(/-only$/, '-or-later');
    if (SPDX.isSupportedSpdxId(`${mapped}+`)) return `${mapped}+`;
  }
  return licenseRef(trimmed);
}

/** Returns the SPDX id spelled as the SPDX list has it when `s` is one (any case), else undefined. */
function canonicalSpdxId(s: string): string | undefined {
  return SPDX.fixupSpdxId(s);
}

/** Returns `LicenseRef-<name>` with characters SPDX does not allow (anything but letters, digits, `.` and `-`) as `-`. */
export function licenseRef(name: string): string {
  return `LicenseRef-${
    name
      .replace(/\+/g, '-or-later')
      .replace(/[^A-Za-z0-9.-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'unknown'
  }`;
}

/**
 * Returns the SPDX expression for a DEP-5 `License:` first line: `or`/`and` (any case, also `|`/`&` and commas as DEP-5
 * allows) keep their meaning, `with X exception` becomes `WITH X-exception` when SPDX knows the exception and is folded
 * into a LicenseRef otherwise. Returns undefined for an empty line.
 */
export function debianExpressionToSpdx(line: string): string | undefined {
  const s = line.trim();
  if (!s) return undefined;
  // DEP-5: "A comma … represents 'and'", " or " and " and " are the operators; parentheses are not part of the syntax.
  const orParts = s.split(/\s+or\s+|\s*\|\s*/i).filter(Boolean);
  const mapped = orParts.map((part) => {
    const andParts = part
      .split(/\s+and\s+|\s*,\s*|\s*&\s*/i)
      .filter(Boolean)
      .map(mapWith);
    return andParts.length > 1 ? andParts.join(' AND ') : andParts[0]!;
  });
  if (mapped.length === 1) return mapped[0];
  return mapped.map((m) => (m.includes(' AND ') ? `(${m})` : m)).join(' OR ');
}

function mapWith(term: string): string {
  const m = /^(.*?)\s+with\s+(.+?)\s*$/i.exec(term);
  if (!m) return debianLicenseToSpdx(term);
  const lic = debianLicenseToSpdx(m[1]!);
  const exc = m[2]!.replace(/\s+exception$/i, '');
  const known = KNOWN_EXCEPTIONS[exc.toLowerCase()];
  if (known && !lic.startsWith('LicenseRef-')) return `${lic} WITH ${known}`;
  return licenseRef(`${m[1]}-with-${exc}-exception`);
}

/** Debian exception names → SPDX exception ids (https://spdx.org/licenses/exceptions-index.html). */
const KNOWN_EXCEPTIONS: Readonly<Record<string, string>> = {
  'gcc-runtime-library': 'GCC-exception-3.1',
  'gcc-exception-3.1': 'GCC-exception-3.1',
  'gcc-exception-2.0': 'GCC-exception-2.0',
  autoconf: 'Autoconf-exception-generic',
  'autoconf-3.0': 'Autoconf-exception-3.0',
  bison: 'Bison-exception-2.2',
  classpath: 'Classpath-exception-2.0',
  font: 'Font-exception-2.0',
  libtool: 'Libtool-exception',
  openssl: 'openvpn-openssl-exception',
};

/** Returns the ids of `LicenseRef-…` references in an expression, sorted and unique. */
export function licenseRefsIn(expression: string): string[] {
  return [...new Set(expression.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? [])].sort();
}
