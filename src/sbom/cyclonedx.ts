import { createHash } from 'node:crypto';
import { Enums, Models, Serialize, Spec } from '@cyclonedx/cyclonedx-library';
import { parseDigest } from '../digest/index.ts';
import { type Inventory, isAppFile, type SbomFile } from './inventory.ts';
import { uuidV5 } from './uuid.ts';

/**
 * CycloneDX 1.6 JSON through `@cyclonedx/cyclonedx-library` (its models, normalizer and serializer; `sortLists` makes
 * the output reproducible). Shape: metadata.component is the image (container); components are the operating system,
 * each deb package (library, purl, licenses, with the files it owns nested as `file` components) and each app file.
 * pare-specific facts are properties in the `pare:` namespace: `pare:sliced`, `pare:source`, `pare:elf-note-package`.
 */

export interface CycloneDxOptions {
  /** Timestamp in seconds since the epoch (SOURCE_DATE_EPOCH). Default 0. */
  readonly created?: number;
  readonly toolVersion: string;
}

function fileComponent(f: SbomFile): Models.Component {
  const c = new Models.Component(Enums.ComponentType.File, f.path, {
    bomRef: `file:${f.path}`,
    hashes: new Models.HashDictionary([
      [Enums.HashAlgorithm['SHA-1'], f.sha1],
      [Enums.HashAlgorithm['SHA-256'], f.sha256],
    ]),
  });
  if (f.elfPackageNote)
    c.properties.add(new Models.Property('pare:elf-note-package', JSON.stringify(f.elfPackageNote)));
  return c;
}

function licensesFor(expression: string | undefined): Models.LicenseRepository {
  const repo = new Models.LicenseRepository();
  if (expression) repo.add(new Models.LicenseExpression(expression));
  return repo;
}

/** Returns the CycloneDX 1.6 BOM model of an inventory. */
export function toCycloneDxModel(inv: Inventory, options: CycloneDxOptions): Models.Bom {
  const bom = new Models.Bom();
  bom.metadata.timestamp = new Date((options.created ?? 0) * 1000);
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, 'pare', { version: options.toolVersion }),
  );
  const image = new Models.Component(Enums.ComponentType.Container, inv.name, { bomRef: 'image' });
  if (inv.digest) {
    const { algorithm, hex } = parseDigest(inv.digest);
    image.version = inv.digest;
    image.hashes.set(
      algorithm === 'sha256' ? Enums.HashAlgorithm['SHA-256'] : Enums.HashAlgorithm['SHA-512'],
      hex,
    );
  }
  bom.metadata.component = image;

  const filesByPackage = new Map<string, SbomFile[]>();
  for (const f of inv.files)
    for (const k of f.packages) {
      const l = filesByPackage.get(k);
      if (l) l.push(f);
      else filesByPackage.set(k, [f]);
    }

  if (inv.os) {
    const os = new Models.Component(Enums.ComponentType.OperatingSystem, inv.os.id, {
      bomRef: 'os',
      ...(inv.os.versionId ? { version: inv.os.versionId } : {}),
      ...(inv.os.prettyName ? { description: inv.os.prettyName } : {}),
    });
    bom.components.add(os);
    image.dependencies.add(os.bomRef);
  }
  for (const p of inv.packages) {
    const c = new Models.Component(Enums.ComponentType.Library, p.name, {
      bomRef: p.purl,
      version: p.version,
      purl: p.purl,
      licenses: licensesFor(p.licenses.expression),
      ...(p.summary ? { description: p.summary } : {}),
      ...(p.maintainer ? { publisher: p.maintainer } : {}),
    });
    if (p.debSha256) c.hashes.set(Enums.HashAlgorithm['SHA-256'], p.debSha256);
    c.properties.add(new Models.Property('pare:source', `${p.source.name} ${p.source.version}`));
    c.properties.add(new Models.Property('pare:architecture', p.architecture));
    if (p.sliced) c.properties.add(new Models.Property('pare:sliced', 'true'));
    // A file owned by two packages (multi-arch docs) is nested under the first; bom-refs must be unique.
    for (const f of filesByPackage.get(p.key) ?? [])
      if (f.packages[0] === p.key) c.components.add(fileComponent(f));
    bom.components.add(c);
    image.dependencies.add(c.bomRef);
  }
  for (const f of inv.files) if (isAppFile(f)) bom.components.add(fileComponent(f));

  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify([
        inv.name,
        inv.digest ?? null,
        options.created ?? 0,
        inv.packages.map((p) => [p.purl, p.licenses.expression ?? null, p.sliced]),
        inv.files.map((f) => [f.path, f.sha256, f.packages]),
      ]),
    )
    .digest('hex');
  bom.serialNumber = `urn:uuid:${uuidV5(`cyclonedx:${fingerprint}`)}`;
  return bom;
}

/** Returns the CycloneDX 1.6 JSON text for an inventory (2-space indent, sorted lists, trailing newline). */
export function cycloneDxJson(inv: Inventory, options: CycloneDxOptions): string {
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return `${serializer.serialize(toCycloneDxModel(inv, options), { sortLists: true, space: 2 })}\n`;
}
