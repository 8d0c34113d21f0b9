import { createHash } from 'node:crypto';
import { debPurl } from '../attest/slsa.ts';
import type { Digest } from '../digest/index.ts';
import type { Content, Tree } from '../fstree/index.ts';
import { type CopyrightLicenses, parseCopyright } from './copyright.ts';
import { type DpkgPackage, packageKey, readDpkgDatabase } from './dpkg.ts';
import { readPackageNote } from './elf-note.ts';
import { distroQualifier, type OsRelease, readOsRelease } from './os-release.ts';

/**
 * What is in an image, read from its root filesystem tree: the OS, the Debian packages with their licenses and files,
 * and every regular file with its checksums, owner package(s) and ELF package note. Both SBOM formats render this one
 * value, so they always agree. Everything is sorted; nothing depends on the host, the clock or iteration order.
 */

export interface SbomPackage extends DpkgPackage {
  /** `name:arch`, unique in the image. */
  readonly key: string;
  readonly purl: string;
  readonly licenses: CopyrightLicenses;
  /** sha256 of the .deb the package came from, when the build's lockfile told us. */
  readonly debSha256: string | undefined;
}

export interface SbomFile {
  readonly path: string;
  readonly size: number;
  readonly sha1: string;
  readonly sha256: string;
  /** Keys (`name:arch`) of the packages that own the path; empty for files no package owns. */
  readonly packages: readonly string[];
  /** The ELF `.note.package` JSON object, when the file has one. */
  readonly elfPackageNote: Readonly<Record<string, unknown>> | undefined;
}

export interface Inventory {
  /** The image name the SBOM describes (e.g. `registry/app:1.0` or a layout path). */
  readonly name: string;
  /** The image manifest digest, when known. */
  readonly digest: Digest | undefined;
  readonly os: OsRelease | undefined;
  readonly packages: readonly SbomPackage[];
  /** Every regular file (hardlinks included, under their own path), sorted by path. */
  readonly files: readonly SbomFile[];
}

export interface InventoryOptions {
  readonly name: string;
  readonly digest?: Digest;
  /** List files (default true); without them the SBOM has packages only. */
  readonly files?: boolean;
  /** sha256 of each .deb by `name:arch`, from the lockfile. */
  readonly debSha256?: ReadonlyMap<string, string>;
  /** Reads an ELF file's package note; default: the built-in `.note.package` reader. */
  readonly readPackageNote?: (content: Content) => Promise<Record<string, unknown> | undefined>;
}

/** The purl `upstream` qualifier of a package: what its `Source:` field says, as syft writes it (`NAME[@VERSION]`). */
function upstreamOf(p: DpkgPackage): string | undefined {
  if (p.source.stated === 'none') return undefined;
  return p.source.stated === 'name-version' ? `${p.source.name}@${p.source.version}` : p.source.name;
}

/** Paths under this prefix are the dpkg database itself, not files of the image's software. */
const DPKG_DB_PREFIX = '/var/lib/dpkg/';

/** True for a file no package owns and that is not dpkg's own bookkeeping: what the user's config put in the image. */
export function isAppFile(f: SbomFile): boolean {
  return f.packages.length === 0 && !f.path.startsWith(DPKG_DB_PREFIX);
}

async function hashContent(c: Content): Promise<{ sha1: string; sha256: string }> {
  const h1 = createHash('sha1');
  const h256 = createHash('sha256');
  for await (const chunk of c.open()) {
    h1.update(chunk);
    h256.update(chunk);
  }
  return { sha1: h1.digest('hex'), sha256: h256.digest('hex') };
}

/**
 * Returns the inventory of `tree`. Reads file contents (hashes, ELF notes) lazily through the tree; does no other
 * I/O. Throws SBOM_DPKG_INVALID for a dpkg database that does not parse.
 */
export async function inventory(tree: Tree, options: InventoryOptions): Promise<Inventory> {
  const os = await readOsRelease(tree);
  const distro = distroQualifier(os);
  const dpkg = await readDpkgDatabase(tree);
  const packages: SbomPackage[] = [];
  const owners = new Map<string, string[]>();
  for (const p of dpkg) {
    const key = packageKey(p);
    const copyrightPath = `/usr/share/doc/${p.name}/copyright`;
    const licenses = tree.file(copyrightPath)
      ? parseCopyright(new TextDecoder().decode(await tree.readFile(copyrightPath)))
      : { expression: undefined, refs: [] };
    packages.push({
      ...p,
      key,
      purl: debPurl(p.name, p.version, p.architecture, distro, upstreamOf(p)),
      licenses,
      debSha256: options.debSha256?.get(key),
    });
    for (const listed of p.files) {
      // usrmerge: a package lists /bin/sh while the tree holds /usr/bin/sh behind the /bin symlink.
      const real = tree.resolve(listed, { follow: false }).path;
      for (const f of real === listed ? [listed] : [listed, real]) {
        const list = owners.get(f);
        if (!list) owners.set(f, [key]);
        else if (!list.includes(key)) list.push(key);
      }
    }
  }
  const files: SbomFile[] = [];
  if (options.files ?? true) {
    const readNote = options.readPackageNote ?? readPackageNote;
    for (const [path, entry] of tree.entries()) {
      if (entry.kind !== 'file' && entry.kind !== 'hardlink') continue;
      const f = tree.file(path);
      if (!f) continue;
      const { sha1, sha256 } = await hashContent(f.content);
      files.push({
        path,
        size: f.content.size,
        sha1,
        sha256,
        packages: (owners.get(path) ?? []).sort(),
        elfPackageNote: await readNote(f.content),
      });
    }
  }
  return { name: options.name, digest: options.digest, os, packages, files };
}
