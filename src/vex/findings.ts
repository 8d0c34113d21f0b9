import { PackageURL } from 'packageurl-js';
import { UsageError } from '../errors.ts';

/**
 * The findings of a scanner report: which vulnerability the scanner matched to which package. Three inputs:
 * - grype `-o json` (anchore/grype grype/presenter/models: `matches[].vulnerability.id`, `matches[].artifact.name`,
 *   `.version`, `.purl`);
 * - trivy `--format json` (aquasecurity/trivy pkg/types: `Results[].Vulnerabilities[].VulnerabilityID`, `PkgName`,
 *   `InstalledVersion`, `PkgIdentifier.PURL`; trivy before 0.30 printed the `Results` array itself);
 * - a plain list: `CVE-ID PACKAGE` per line (`#` starts a comment).
 */

export type ReportFormat = 'grype' | 'trivy' | 'list';

export interface Finding {
  /** The vulnerability id (CVE-…, or the scanner's own id such as GHSA-…). */
  readonly id: string;
  /** The binary package the scanner matched. */
  readonly package: string;
  /** The version it saw, when the report says. */
  readonly version: string | undefined;
  /** The package URL it gave, when any. */
  readonly purl: string | undefined;
}

/** Reports larger than this are refused (the largest real ones are a few MiB). */
export const MAX_REPORT_BYTES = 64 * 1024 * 1024;

const ID = /^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$/;
const PACKAGE = /^[A-Za-z0-9][A-Za-z0-9+._:~-]*$/;

function bad(file: string, message: string, line?: number, column?: number): UsageError {
  const at = line !== undefined ? `${file}:${line}:${column ?? 1}` : file;
  return new UsageError('INPUT_INVALID', `cannot read report ${at}: ${message}`, {
    file,
    ...(line !== undefined ? { line, column: column ?? 1 } : {}),
  });
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Returns the format of a report's text: JSON with `matches` is grype's, with `Results` trivy's, else a list. */
export function reportFormat(text: string): ReportFormat {
  const t = text.trimStart();
  if (!t.startsWith('{') && !t.startsWith('[')) return 'list';
  return /"matches"\s*:/.test(t) ? 'grype' : 'trivy';
}

/**
 * Parses a scanner report into findings, unique by (id, package), in report order. Throws UsageError INPUT_INVALID
 * naming `file` (and line:column for a list, the JSON path for a report) for anything it cannot read as it says.
 */
export function parseReport(text: string, file: string): { format: ReportFormat; findings: Finding[] } {
  if (text.length > MAX_REPORT_BYTES) throw bad(file, `larger than ${MAX_REPORT_BYTES} bytes`);
  const format = reportFormat(text);
  const raw = format === 'list' ? parseList(text, file) : parseJsonReport(text, file, format);
  const seen = new Set<string>();
  const findings: Finding[] = [];
  for (const f of raw) {
    const key = `${f.id} ${f.package}`;
    if (seen.has(key)) continue;
    seen.add(key);
    findings.push(f);
  }
  return { format, findings };
}

function parseList(text: string, file: string): Finding[] {
  const out: Finding[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const body = line.replace(/#.*$/, '');
    if (body.trim() === '') continue;
    const fields = [...body.matchAll(/\S+/g)];
    if (fields.length !== 2)
      throw bad(
        file,
        `want "CVE-ID PACKAGE", got ${JSON.stringify(line.trim())}`,
        i + 1,
        (fields[0]?.index ?? 0) + 1,
      );
    const [id, pkg] = fields as [RegExpMatchArray, RegExpMatchArray];
    if (!ID.test(id[0]))
      throw bad(file, `${JSON.stringify(id[0])} is not a vulnerability id`, i + 1, id.index! + 1);
    if (!PACKAGE.test(pkg[0]))
      throw bad(file, `${JSON.stringify(pkg[0])} is not a package name`, i + 1, pkg.index! + 1);
    out.push({ id: id[0], package: pkg[0], version: undefined, purl: undefined });
  }
  return out;
}

function parseJsonReport(text: string, file: string, format: 'grype' | 'trivy'): Finding[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not JSON: ${(e as Error).message}`);
  }
  const out: Finding[] = [];
  const need = (v: unknown, at: string, what: string): string => {
    const s = str(v);
    if (s === undefined) throw bad(file, `${at}: want ${what}`);
    return s;
  };
  const purlOf = (v: unknown, at: string): string | undefined => {
    const s = str(v);
    if (s === undefined) return undefined;
    try {
      PackageURL.fromString(s);
    } catch (e) {
      throw bad(file, `${at}: ${JSON.stringify(s)} is not a package URL: ${(e as Error).message}`);
    }
    return s;
  };
  if (format === 'grype') {
    const matches = (doc as { matches?: unknown }).matches;
    if (!Array.isArray(matches)) throw bad(file, 'matches: want an array (grype -o json)');
    matches.forEach((m: unknown, i) => {
      const at = `matches[${i}]`;
      const v = (m as { vulnerability?: { id?: unknown } })?.vulnerability;
      const a = (m as { artifact?: { name?: unknown; version?: unknown; purl?: unknown } })?.artifact;
      out.push({
        id: need(v?.id, `${at}.vulnerability.id`, 'a vulnerability id'),
        package: need(a?.name, `${at}.artifact.name`, 'a package name'),
        version: str(a?.version),
        purl: purlOf(a?.purl, `${at}.artifact.purl`),
      });
    });
    return out;
  }
  const results = Array.isArray(doc) ? doc : (doc as { Results?: unknown })?.Results;
  if (results === undefined || results === null) return out; // trivy omits Results when there is nothing to report
  if (!Array.isArray(results)) throw bad(file, 'Results: want an array (trivy --format json)');
  results.forEach((r: unknown, i) => {
    const vulns = (r as { Vulnerabilities?: unknown })?.Vulnerabilities;
    if (vulns === undefined || vulns === null) return;
    if (!Array.isArray(vulns)) throw bad(file, `Results[${i}].Vulnerabilities: want an array`);
    vulns.forEach((v: unknown, j) => {
      const at = `Results[${i}].Vulnerabilities[${j}]`;
      const x = v as {
        VulnerabilityID?: unknown;
        PkgName?: unknown;
        InstalledVersion?: unknown;
        PkgIdentifier?: { PURL?: unknown };
      };
      out.push({
        id: need(x?.VulnerabilityID, `${at}.VulnerabilityID`, 'a vulnerability id'),
        package: need(x?.PkgName, `${at}.PkgName`, 'a package name'),
        version: str(x?.InstalledVersion),
        purl: purlOf(x?.PkgIdentifier?.PURL, `${at}.PkgIdentifier.PURL`),
      });
    });
  });
  return out;
}
