import { createHash } from 'node:crypto';
import { parseDigest } from '../digest/index.ts';
import { type Inventory, isAppFile, type SbomFile, type SbomPackage } from './inventory.ts';
import { uuidV5 } from './uuid.ts';

/**
 * SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/), written by hand from an Inventory: no SPDX library gives
 * the control over ids, ordering and relationships that byte-identical output needs. Shape:
 *
 *   DOCUMENT ─DESCRIBES→ image (CONTAINER) ─CONTAINS→ operating system, each deb package, each app file
 *   deb package ─CONTAINS→ each file it owns
 *
 * Ids are derived from names and paths, lists are sorted, `created` comes from the caller (SOURCE_DATE_EPOCH), and
 * the namespace is a UUIDv5 of the content, so equal inputs give equal bytes.
 */

export interface SpdxOptions {
  /** Creation time in seconds since the epoch (SOURCE_DATE_EPOCH). Default 0. */
  readonly created?: number;
  /** pare's version for the `Tool:` creator. */
  readonly toolVersion: string;
}

const NOASSERTION = 'NOASSERTION';

/** Returns an SPDX id made of the allowed characters (letters, digits, `.`, `-`). */
function idPart(s: string): string {
  return s.replace(/[^A-Za-z0-9.-]+/g, '-');
}

/** Short stable hash so sanitised ids never collide (libstdc++6 vs libstdc--6). */
function short(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 8);
}

export function spdxPackageId(p: SbomPackage): string {
  return `SPDXRef-Package-deb-${idPart(p.name)}-${idPart(p.architecture)}-${short(p.key)}`;
}

export function spdxFileId(f: SbomFile): string {
  return `SPDXRef-File-${createHash('sha256').update(f.path).digest('hex').slice(0, 16)}`;
}

/** SPDX agent syntax: `Person: name (email)` from a Debian `Name <email>` field. */
function supplier(maintainer: string | undefined): string {
  if (!maintainer) return NOASSERTION;
  const m = /^\s*(.*?)\s*<([^>]*)>\s*$/.exec(maintainer);
  return m ? `Person: ${m[1]} (${m[2]})` : `Person: ${maintainer.trim()}`;
}

function isoSeconds(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The verification code of SPDX 2.3 §7.9: SHA-1 over the sorted, concatenated SHA-1s of the package's files. */
function verificationCode(files: readonly SbomFile[]): string {
  const sums = files.map((f) => f.sha1).sort();
  return createHash('sha1').update(sums.join('')).digest('hex');
}

function debFileName(p: SbomPackage): string {
  return `${p.name}_${p.version.replace(/^\d+:/, '')}_${p.architecture}.deb`;
}

/** Returns the SPDX 2.3 document for an inventory as a plain object (render with spdxJson). */
export function toSpdx(inv: Inventory, options: SpdxOptions): Record<string, unknown> {
  const created = isoSeconds(options.created ?? 0);
  const tool = `Tool: pare-${options.toolVersion}`;
  const filesByPackage = new Map<string, SbomFile[]>();
  for (const f of inv.files)
    for (const k of f.packages) {
      const l = filesByPackage.get(k);
      if (l) l.push(f);
      else filesByPackage.set(k, [f]);
    }

  const imageId = 'SPDXRef-Image';
  const osId = 'SPDXRef-OperatingSystem';
  const packages: Record<string, unknown>[] = [];
  const relationships: Record<string, unknown>[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: imageId, relationshipType: 'DESCRIBES' },
  ];
  const image: Record<string, unknown> = {
    name: inv.name,
    SPDXID: imageId,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    primaryPackagePurpose: 'CONTAINER',
  };
  if (inv.digest) {
    const { algorithm, hex } = parseDigest(inv.digest);
    image.versionInfo = inv.digest;
    image.checksums = [{ algorithm: algorithm.toUpperCase(), checksumValue: hex }];
  }
  packages.push(image);
  if (inv.os) {
    packages.push({
      name: inv.os.id,
      SPDXID: osId,
      ...(inv.os.versionId ? { versionInfo: inv.os.versionId } : {}),
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      ...(inv.os.prettyName ? { description: inv.os.prettyName } : {}),
      primaryPackagePurpose: 'OPERATING_SYSTEM',
    });
    relationships.push({ spdxElementId: imageId, relatedSpdxElement: osId, relationshipType: 'CONTAINS' });
  }
  const extracted = new Map<string, { licenseId: string; name: string; extractedText: string }>();
  for (const p of inv.packages) {
    const id = spdxPackageId(p);
    const files = filesByPackage.get(p.key) ?? [];
    const pkg: Record<string, unknown> = {
      name: p.name,
      SPDXID: id,
      versionInfo: p.version,
      supplier: supplier(p.maintainer),
      downloadLocation: NOASSERTION,
      filesAnalyzed: files.length > 0,
    };
    if (files.length > 0)
      pkg.packageVerificationCode = { packageVerificationCodeValue: verificationCode(files) };
    if (p.debSha256) {
      pkg.packageFileName = debFileName(p);
      pkg.checksums = [{ algorithm: 'SHA256', checksumValue: p.debSha256 }];
    }
    if (p.homepage) pkg.homepage = p.homepage;
    pkg.sourceInfo = `built package from: ${p.source.name} ${p.source.version}`;
    pkg.licenseConcluded = NOASSERTION;
    pkg.licenseDeclared = p.licenses.expression ?? NOASSERTION;
    pkg.copyrightText = NOASSERTION;
    if (p.summary) pkg.summary = p.summary;
    pkg.externalRefs = [
      { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl },
    ];
    pkg.primaryPackagePurpose = 'LIBRARY';
    if (p.sliced)
      pkg.annotations = [
        {
          annotationDate: created,
          annotationType: 'OTHER',
          annotator: tool,
          comment: 'pare:sliced=true (files not needed at run time were removed from this package)',
        },
      ];
    packages.push(pkg);
    for (const r of p.licenses.refs)
      if (!extracted.has(r.id))
        extracted.set(r.id, {
          licenseId: r.id,
          name: r.name,
          extractedText: r.text ?? `License "${r.name}" as named in /usr/share/doc/${p.name}/copyright`,
        });
    relationships.push({ spdxElementId: imageId, relatedSpdxElement: id, relationshipType: 'CONTAINS' });
    for (const f of files)
      relationships.push({
        spdxElementId: id,
        relatedSpdxElement: spdxFileId(f),
        relationshipType: 'CONTAINS',
      });
  }
  const files = inv.files.map((f) => {
    const out: Record<string, unknown> = {
      fileName: f.path,
      SPDXID: spdxFileId(f),
      checksums: [
        { algorithm: 'SHA1', checksumValue: f.sha1 },
        { algorithm: 'SHA256', checksumValue: f.sha256 },
      ],
      licenseConcluded: NOASSERTION,
      copyrightText: NOASSERTION,
    };
    if (f.elfPackageNote) {
      out.fileTypes = ['BINARY'];
      out.annotations = [
        {
          annotationDate: created,
          annotationType: 'OTHER',
          annotator: tool,
          comment: `pare:elf-note-package=${JSON.stringify(f.elfPackageNote)}`,
        },
      ];
    }
    return out;
  });
  for (const f of inv.files)
    if (isAppFile(f))
      relationships.push({
        spdxElementId: imageId,
        relatedSpdxElement: spdxFileId(f),
        relationshipType: 'CONTAINS',
      });

  const body = {
    packages,
    files,
    relationships,
    extracted: [...extracted.values()].sort((a, b) => (a.licenseId < b.licenseId ? -1 : 1)),
  };
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([inv.name, inv.digest ?? null, created, body]))
    .digest('hex');
  const doc: Record<string, unknown> = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: inv.name,
    // A URN: unique per content (SPDX 2.3 §6.5), and it names no host.
    documentNamespace: `urn:uuid:${uuidV5(`spdx:${fingerprint}`)}`,
    creationInfo: { created, creators: [tool] },
    packages,
    files,
    relationships,
  };
  if (body.extracted.length) doc.hasExtractedLicensingInfos = body.extracted;
  return doc;
}

/** Returns the SPDX 2.3 JSON text for an inventory (2-space indent, trailing newline). */
export function spdxJson(inv: Inventory, options: SpdxOptions): string {
  return `${JSON.stringify(toSpdx(inv, options), null, 2)}\n`;
}
