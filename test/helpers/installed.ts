import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readdirSync, realpathSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * pare as a user gets it: `npm pack` of a checkout of this working tree (which builds dist/ through the `prepare`
 * script, as a git install does), installed with `npm install --global` into a fresh prefix. The checkout is a copy
 * of the tracked inputs, so the clone's own dist/ is never written and parallel test files do not race on it.
 * Dependencies come from npm's cache when it has them (`--prefer-offline`; `npm ci` fills it).
 */

const ROOT = resolve(import.meta.dirname, '../..');
/** The pinned Node 24 of this clone. */
export const PINNED_NODE = realpathSync(join(ROOT, 'node_modules/.bin/node'));

/** What `packAndInstall` made. */
export interface Installed {
  /** The `npm pack` tarball. */
  readonly tarball: string;
  /** The `--prefix` of the global install: `bin/pare`, `lib/node_modules/pare`. */
  readonly prefix: string;
  /** The installed `pare` (a symlink to the package's bin/pare.js). */
  readonly bin: string;
  /** The installed package's directory. */
  readonly pkg: string;
  /** A directory holding only `node` (the pinned one). */
  readonly nodeDir: string;
  /** PATH with `nodeDir` and the system directories only: no clone, no node_modules/.bin. */
  readonly path: string;
}

/** The usual system directories, without anything of the clone. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'README.md',
  'bin',
  'src',
];

/** Packs this working tree and installs the tarball globally into a prefix under `dir` (an empty directory). */
export function packAndInstall(dir: string): Installed {
  const nodeDir = join(dir, 'node-bin');
  mkdirSync(nodeDir);
  symlinkSync(PINNED_NODE, join(nodeDir, 'node'));
  const path = `${nodeDir}:${SYSTEM_PATH}`;
  const env = { ...process.env, PATH: path, npm_config_update_notifier: 'false', npm_config_fund: 'false' };

  const checkout = join(dir, 'checkout');
  for (const f of FILES) cpSync(join(ROOT, f), join(checkout, f), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
  const packs = join(dir, 'packs');
  mkdirSync(packs);
  execFileSync('npm', ['pack', '--pack-destination', packs], { cwd: checkout, env, stdio: 'pipe' });
  const [name] = readdirSync(packs);
  const tarball = join(packs, name!);

  const prefix = join(dir, 'prefix');
  execFileSync(
    'npm',
    ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    { cwd: dir, env, stdio: 'pipe' },
  );
  return {
    tarball,
    prefix,
    bin: join(prefix, 'bin/pare'),
    pkg: join(prefix, 'lib/node_modules/pare'),
    nodeDir,
    path,
  };
}

/**
 * The Node and pare entry (`[node, bin/pare.js]`) another user can run, `as` being the command that switches to it
 * (`setpriv --reuid=… --`): the clone's, when that user can reach them; else (a clone under a 0700 directory, such as
 * root's home) pare installed from this tree (`packAndInstall`) beside a copy of the pinned Node, under `dir`
 * (created searchable; its parents must be).
 */
export function entryRunnableBy(as: readonly string[], dir: string): readonly [node: string, script: string] {
  const clone = [PINNED_NODE, join(ROOT, 'bin/pare.js')] as const;
  if (spawnSync(as[0]!, [...as.slice(1), ...clone, '--version'], { stdio: 'ignore' }).status === 0)
    return clone;
  mkdirSync(dir, { mode: 0o755 });
  const inst = packAndInstall(dir);
  const node = join(dir, 'node');
  copyFileSync(PINNED_NODE, node);
  chmodSync(node, 0o755);
  const script = join(inst.pkg, 'bin/pare.js');
  const probe = spawnSync(as[0]!, [...as.slice(1), node, script, '--version'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`the installed pare does not run as another user: ${probe.stderr}`);
  return [node, script];
}
