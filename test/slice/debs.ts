import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Assembled, assembleRootfs, type DebPackage, readDebFile } from '../../src/debian/index.ts';
import { peer } from '../helpers/peers.ts';

/**
 * Real Debian package sets for the slice tests and bench, fetched with the host's apt (its sources point at the
 * configured mirror; nothing here names a host). The set is what `apt-get install --simulate` picks for the given
 * packages on an empty system (an empty dpkg status file, the host's package lists), so it is the full dependency
 * closure. .debs are cached in `${tmpdir()}/pare-test-debs` and shared by every test file of a run (and later runs).
 */

export const DEB_CACHE = join(tmpdir(), 'pare-test-debs');

export const SETS = {
  python3: ['python3', 'ca-certificates', 'base-files', 'netbase', 'tzdata'],
  nodejs: ['nodejs', 'ca-certificates', 'base-files', 'netbase'],
  cc: ['libc6', 'libssl3', 'libgcc-s1', 'libstdc++6', 'base-files', 'ca-certificates'],
} as const;

/** True when the host has apt and dpkg (the sets cannot be fetched otherwise). */
export function aptAvailable(): boolean {
  return peer('apt-get') !== undefined && peer('dpkg') !== undefined;
}

function arch(): string {
  return execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
}

/** Returns `name=version` for every package apt would install for `wanted` on an empty system. */
export function aptSelection(wanted: readonly string[]): string[] {
  mkdirSync(DEB_CACHE, { recursive: true });
  const status = join(DEB_CACHE, 'empty-status');
  if (!existsSync(status)) writeFileSync(status, '');
  const out = execFileSync(
    'apt-get',
    [
      `-oDir::State::Status=${status}`,
      '-oAPT::Install-Recommends=false',
      '-oDebug::NoLocking=1',
      'install',
      '--simulate',
      ...wanted,
    ],
    { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 26 },
  );
  const sel: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^Inst (\S+) \((\S+) /.exec(line);
    if (m) sel.push(`${m[1]!.replace(/:.*$/, '')}=${m[2]}`);
  }
  return sel.sort();
}

/** Downloads (or finds in the cache) the .debs of `selection` and returns their paths, sorted. */
export function fetchDebs(selection: readonly string[]): string[] {
  const a = arch();
  const want = selection.map((s) => {
    const [name, version] = s.split('=') as [string, string];
    return { s, file: `${name}_${version.replace(/:/g, '%3a')}` };
  });
  const have = new Set(readdirSync(DEB_CACHE));
  const found = (f: string) => [`${f}_${a}.deb`, `${f}_all.deb`].find((x) => have.has(x));
  const missing = want.filter((w) => !found(w.file));
  if (missing.length > 0) {
    // Download into a private dir and move into the shared cache, so a parallel test never sees a partial file.
    const dir = join(DEB_CACHE, `.dl-${process.pid}-${Date.now()}`);
    mkdirSync(dir);
    try {
      execFileSync('apt-get', ['download', '-oAPT::Sandbox::User=root', '-q', ...missing.map((m) => m.s)], {
        cwd: dir,
        stdio: 'pipe',
      });
      for (const f of readdirSync(dir)) renameSync(join(dir, f), join(DEB_CACHE, f));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const f of readdirSync(DEB_CACHE)) have.add(f);
  }
  return want
    .map((w) => {
      const f = found(w.file);
      if (!f) throw new Error(`apt-get download did not give ${w.s}`);
      return join(DEB_CACHE, f);
    })
    .sort();
}

export interface PackageSet {
  readonly debs: readonly DebPackage[];
  readonly assembled: Assembled;
  readonly files: readonly string[];
  readonly architecture: string;
}

/** Reads the .debs and assembles the root filesystem at epoch 0. */
export async function assembleSet(files: readonly string[]): Promise<PackageSet> {
  const debs: DebPackage[] = [];
  for (const f of files) debs.push(await readDebFile(f));
  const architecture = arch();
  const assembled = await assembleRootfs(debs, { architecture, epoch: 0 });
  return { debs, assembled, files, architecture };
}

/** Fetches and assembles one of the named sets. */
export async function packageSet(name: keyof typeof SETS): Promise<PackageSet> {
  return assembleSet(fetchDebs(aptSelection(SETS[name])));
}
