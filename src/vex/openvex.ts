import { createHash } from 'node:crypto';
import { PackageURL } from 'packageurl-js';
import { UsageError } from '../errors.ts';
import { uuidV5 } from '../sbom/index.ts';
import type { Decision } from './decide.ts';
import { type Finding, parseReport, type ReportFormat } from './findings.ts';

/**
 * OpenVEX 0.2.0 documents (openvex/spec OPENVEX-SPEC.md, JSON schema vendored in test/fixtures/openvex): one statement
 * per finding, the image as the product (`pkg:oci/…@sha256:…`) and the finding's Debian package as its subcomponent,
 * with the purl pare's SBOM gives it (src/sbom inventory, attest/slsa.ts debPurl), so grype `--vex` and trivy `--vex`
 * match it to their findings.
 */

export const OPENVEX_CONTEXT = 'https://openvex.dev/ns/v0.2.0';
/** pare's UUID namespace for VEX document ids (random once, fixed forever). */
export const PARE_VEX_NAMESPACE = 'c0b5f3e2-2a8e-4d6f-9e61-7b3d58a1c4f9';

export interface OpenVexStatement {
  readonly vulnerability: { readonly name: string };
  readonly products: readonly {
    readonly '@id': string;
    readonly subcomponents?: readonly { readonly '@id': string }[];
  }[];
  readonly status: 'not_affected' | 'affected' | 'fixed' | 'under_investigation';
  readonly justification?: string;
  readonly impact_statement?: string;
  readonly action_statement?: string;
  readonly status_notes?: string;
}

export interface OpenVexDocument {
  readonly '@context': string;
  readonly '@id': string;
  readonly author: string;
  readonly timestamp: string;
  readonly version: number;
  readonly tooling?: string;
  readonly statements: readonly OpenVexStatement[];
}

/** Returns the `pkg:oci/NAME@sha256:…` purl of an image (`repository_url` when it came from a registry). */
export function ociPurl(name: string, digest: string, repositoryUrl?: string): string {
  const clean =
    name
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'image';
  const q: Record<string, string> = {};
  if (repositoryUrl) q.repository_url = repositoryUrl;
  return new PackageURL(
    'oci',
    undefined,
    clean,
    digest,
    Object.keys(q).length > 0 ? q : undefined,
    undefined,
  ).toString();
}

/** The purl a finding's statement names: pare's SBOM purl when installed, else the scanner's, else a bare deb purl. */
function subcomponents(d: Decision): { '@id': string }[] {
  const ids = new Set<string>();
  if (d.purl) ids.add(d.purl);
  if (d.finding.purl) ids.add(d.finding.purl);
  if (ids.size === 0)
    ids.add(
      new PackageURL('deb', 'debian', d.finding.package, d.finding.version, undefined, undefined).toString(),
    );
  return [...ids].map((id) => ({ '@id': id }));
}

export interface OpenVexOptions {
  /** The image's product purl (ociPurl). */
  readonly product: string;
  /** The image manifest digest and the report's bytes: the document `@id` follows from both. */
  readonly imageDigest: string;
  readonly report: Uint8Array;
  readonly author: string;
  /** Seconds since 1970 (SOURCE_DATE_EPOCH when set). */
  readonly timestamp: number;
  readonly tooling: string;
}

/** Returns the OpenVEX document of `decisions`, statements sorted by vulnerability then package. */
export function toOpenVex(decisions: readonly Decision[], o: OpenVexOptions): OpenVexDocument {
  const reportDigest = `sha256:${createHash('sha256').update(o.report).digest('hex')}`;
  const sorted = [...decisions].sort(
    (a, b) => cmp(a.finding.id, b.finding.id) || cmp(a.finding.package, b.finding.package),
  );
  const statements = sorted.map((d): OpenVexStatement => {
    const base = {
      vulnerability: { name: d.finding.id },
      products: [{ '@id': o.product, subcomponents: subcomponents(d) }],
      status: d.status,
    };
    if (d.status === 'not_affected')
      return { ...base, justification: d.justification!, impact_statement: d.impact };
    if (d.status === 'affected')
      return {
        ...base,
        action_statement: d.action ?? 'Rebuild the image with a fixed package.',
        status_notes: d.impact,
      };
    return { ...base, status_notes: d.impact };
  });
  return {
    '@context': OPENVEX_CONTEXT,
    '@id': `urn:uuid:${uuidV5(`${o.imageDigest} ${reportDigest}`, PARE_VEX_NAMESPACE)}`,
    author: o.author,
    timestamp: new Date(o.timestamp * 1000).toISOString().replace(/\.000Z$/, 'Z'),
    version: 1,
    tooling: o.tooling,
    statements,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Parses an OpenVEX document (what `apply` reads); throws UsageError INPUT_INVALID naming the file and field. */
export function parseOpenVex(text: string, file: string): OpenVexDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError('INPUT_INVALID', `cannot read VEX ${file}: not JSON: ${(e as Error).message}`, {
      file,
    });
  }
  const d = doc as Partial<OpenVexDocument>;
  const fail = (what: string) =>
    new UsageError('INPUT_INVALID', `cannot read VEX ${file}: ${what} (want an OpenVEX document)`, { file });
  if (typeof d?.['@context'] !== 'string' || !d['@context'].startsWith('https://openvex.dev/ns'))
    throw fail('@context is not https://openvex.dev/ns…');
  if (!Array.isArray(d.statements)) throw fail('statements: want an array');
  d.statements.forEach((s, i) => {
    if (typeof s?.vulnerability?.name !== 'string')
      throw fail(`statements[${i}].vulnerability.name: want a string`);
    if (!['not_affected', 'affected', 'fixed', 'under_investigation'].includes(s.status))
      throw fail(`statements[${i}].status: want not_affected, affected, fixed or under_investigation`);
    if (!Array.isArray(s.products)) throw fail(`statements[${i}].products: want an array`);
  });
  return d as OpenVexDocument;
}

/** The name and version of a purl, or undefined when it is not one. */
function purlNameVersion(p: string): { name: string; version: string | undefined } | undefined {
  try {
    const u = PackageURL.fromString(p);
    return { name: u.name, version: u.version ?? undefined };
  } catch {
    return undefined;
  }
}

/** True when a statement's subcomponent (or product) names the finding's package (and version, when both say). */
function names(s: OpenVexStatement, f: Finding): boolean {
  for (const p of s.products) {
    for (const c of [...(p.subcomponents ?? []), p]) {
      const id = c['@id'];
      if (typeof id !== 'string') continue;
      if (f.purl !== undefined && id === f.purl) return true;
      const nv = purlNameVersion(id);
      if (!nv || nv.name !== f.package) continue;
      if (nv.version === undefined || f.version === undefined || nv.version === f.version) return true;
    }
  }
  return false;
}

/** A trivy finding's PkgIdentifier object. */
function pkgId(v: Record<string, unknown>): { PURL?: unknown } | undefined {
  const id = v.PkgIdentifier;
  return typeof id === 'object' && id !== null ? (id as { PURL?: unknown }) : undefined;
}

export interface Suppressed {
  readonly finding: Finding;
  readonly status: 'not_affected' | 'fixed';
  readonly why: string;
}

/**
 * Filters a scanner report (grype, trivy or a list) by a VEX document: a finding with a `not_affected` or `fixed`
 * statement for its vulnerability and package is removed. Returns the report's text without them (same format), and
 * what was removed and why.
 */
export function applyVex(
  reportText: string,
  reportFile: string,
  vex: OpenVexDocument,
): { format: ReportFormat; text: string; suppressed: Suppressed[]; kept: number } {
  // Parsed first: a report that does not read as one is refused before anything is filtered.
  const { format } = parseReport(reportText, reportFile);
  const suppressed: Suppressed[] = [];
  const verdict = new Map<string, Suppressed | undefined>();
  const check = (f: Finding): boolean => {
    const key = `${f.id} ${f.package} ${f.version ?? ''} ${f.purl ?? ''}`;
    if (!verdict.has(key)) {
      const s = vex.statements.find(
        (x) =>
          (x.status === 'not_affected' || x.status === 'fixed') &&
          x.vulnerability.name === f.id &&
          names(x, f),
      );
      const hit = s
        ? {
            finding: f,
            status: s.status as 'not_affected' | 'fixed',
            why: [s.justification, s.impact_statement].filter((x) => x !== undefined).join(': ') || s.status,
          }
        : undefined;
      if (hit) suppressed.push(hit);
      verdict.set(key, hit);
    }
    return verdict.get(key) !== undefined;
  };
  let kept = 0;
  if (format === 'list') {
    const lines = reportText.split('\n').filter((line) => {
      const body = line.replace(/#.*$/, '').trim();
      if (body === '') return true;
      const [id, pkg] = body.split(/\s+/) as [string, string];
      const drop = check({ id, package: pkg, version: undefined, purl: undefined });
      if (!drop) kept++;
      return !drop;
    });
    return { format, text: lines.join('\n'), suppressed, kept };
  }
  const doc = JSON.parse(reportText) as Record<string, unknown> | unknown[];
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  if (format === 'grype') {
    const d = doc as { matches: { vulnerability: { id: string }; artifact: Record<string, unknown> }[] };
    d.matches = d.matches.filter((m) => {
      const drop = check({
        id: m.vulnerability.id,
        package: m.artifact.name as string,
        version: str(m.artifact.version),
        purl: str(m.artifact.purl),
      });
      if (!drop) kept++;
      return !drop;
    });
  } else {
    const results = (Array.isArray(doc) ? doc : ((doc as { Results?: unknown[] }).Results ?? [])) as {
      Vulnerabilities?: Record<string, unknown>[] | null;
    }[];
    for (const r of results) {
      if (!Array.isArray(r.Vulnerabilities)) continue;
      r.Vulnerabilities = r.Vulnerabilities.filter((v) => {
        const ident = pkgId(v);
        const drop = check({
          id: v.VulnerabilityID as string,
          package: v.PkgName as string,
          version: str(v.InstalledVersion),
          purl: str(ident?.PURL),
        });
        if (!drop) kept++;
        return !drop;
      });
    }
  }
  return { format, text: `${JSON.stringify(doc, null, 2)}\n`, suppressed, kept };
}
