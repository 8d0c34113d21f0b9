import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { debianSource } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
import {
  type DebianSource,
  findOutdated,
  type InstalledPackages,
  type OutdatedReport,
  readLock,
} from '../../debian/index.ts';
import { UsageError } from '../../errors.ts';
import { imageToTree } from '../../oci/index.ts';
import { readDpkgDatabase, readOsRelease } from '../../sbom/index.ts';
import { EXIT_FAILED } from '../exit-codes.ts';
import { printJson } from '../format.ts';
import { progress as progressFor, progressMode } from '../progress.ts';
import { openReference, platformFlag } from '../reference.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare outdated [PROJECT|IMAGE]`: the locked packages (or, for an image, the packages its dpkg metadata lists) that
 * have a newer version in the archive now (suite, -updates and -security, always), with the CVE ids the candidate's
 * changelog names since the locked version. Exit 1 when a security update is pending (a CI gate), 0 when none, 2 on
 * a missing or bad pare.lock or an image without dpkg metadata.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('outdated')
      .description(
        'list the packages of pare.lock (or of an image) with a newer version in the Debian archive (suite, -updates, -security) and the CVEs fixed since; exit 1 when a security update is pending',
      )
      .argument(
        '[target]',
        'a pare.yaml or the directory holding one (default .), or an image: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, HOST[:PORT]/REPO[:TAG]',
        '.',
      )
      .option('--json', 'print the report as JSON')
      .option(
        '--config <pare.yaml>',
        "for an image: take the archive settings (debian:) from this file's debian:",
      )
      .option(
        '--suite <codename>',
        "for an image: the Debian suite (default: VERSION_CODENAME of the image's os-release)",
      )
      .option('--platform <os/arch>', 'image of an index to check (default: the host platform)'),
  ).action(
    async (
      target: string,
      opts: RegistryFlags & { json?: boolean; config?: string; suite?: string; platform?: string },
    ) => {
      const { what, packages, source } = isProject(target)
        ? await fromLock(target)
        : await fromImage(target, opts);
      const progress = progressFor(progressMode(opts.json));
      const report = await findOutdated(packages, source, { onProgress: progress.download });
      progress.done();
      if (opts.json) printJson({ [what.kind]: what.name, ...report });
      else print(report, what.name, packages.packages.length);
      if (report.securityPending) process.exitCode = EXIT_FAILED;
    },
  );
}

interface Target {
  readonly what: { readonly kind: 'lock' | 'image'; readonly name: string };
  readonly packages: InstalledPackages;
  readonly source: DebianSource;
}

/** A project is a .yaml file or a directory holding pare.yaml (or `.`, whose missing pare.yaml loadConfig reports). */
function isProject(target: string): boolean {
  if (target === '.') return true;
  if (!existsSync(target)) return false;
  return statSync(target).isDirectory() ? existsSync(join(target, 'pare.yaml')) : /\.ya?ml$/.test(target);
}

async function fromLock(project: string): Promise<Target> {
  const loaded = await loadConfig(project);
  const lockPath = join(loaded.dir, 'pare.lock');
  const lock = await readLock(lockPath);
  if (!lock)
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot check ${lockPath}: there is no lock; run "pare lock" first`,
      {
        file: lockPath,
      },
    );
  return { what: { kind: 'lock', name: lockPath }, packages: lock, source: debianSource(loaded) };
}

async function fromImage(
  reference: string,
  opts: RegistryFlags & { config?: string; suite?: string; platform?: string },
): Promise<Target> {
  const client = lazyClient({ ...opts, quiet: true });
  try {
    const opened = await openReference(reference, client);
    const tree = await imageToTree(await opened.image(platformFlag(opts.platform)));
    const dpkg = await readDpkgDatabase(tree);
    if (dpkg.length === 0)
      throw new UsageError(
        'INPUT_INVALID',
        `cannot check image ${opened.name}: it has no dpkg metadata (/var/lib/dpkg/status or /var/lib/dpkg/status.d/)`,
      );
    const suite = opts.suite ?? (await readOsRelease(tree))?.versionCodename;
    if (!suite)
      throw new UsageError(
        'INPUT_INVALID',
        `cannot tell the Debian suite of image ${opened.name}: its os-release has no VERSION_CODENAME; pass --suite`,
      );
    const base = opts.config ? debianSource(await loadConfig(opts.config)) : { suite };
    return {
      what: { kind: 'image', name: opened.name },
      packages: {
        packages: dpkg.map((p) => ({ name: p.name, version: p.version, architecture: p.architecture })),
      },
      source: { ...base, suite },
    };
  } finally {
    await client.close();
  }
}

function print(report: OutdatedReport, name: string, total: number): void {
  for (const p of report.packages) {
    const cves = p.cves.length > 0 ? p.cves.join(' ') : p.changelog === 'missing' ? '(no changelog)' : '-';
    process.stdout.write(
      `${p.name}:${p.architecture} ${p.locked} -> ${p.candidate} (${p.suite})${p.security ? ' [security]' : ''} ${cves}${p.changelog === 'partial' ? ' (changelog ends before the locked version)' : ''}\n`,
    );
  }
  const sec = report.packages.filter((p) => p.security).length;
  process.stderr.write(
    `${name}: ${report.packages.length} of ${total} packages outdated, ${sec} with a security update (${report.suites.map((s) => s.suite).join(', ')})\n`,
  );
}
