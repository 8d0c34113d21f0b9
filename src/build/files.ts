import type { Stats } from 'node:fs';
import { lstat, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { LoadedConfig } from '../config/index.ts';
import type { FileSpec } from '../config/schema.ts';
import { BaseError, UsageError } from '../errors.ts';
import {
  bufferContent,
  type Entry,
  hostFileContentSized,
  normalizePath,
  readHostDir,
  type Tree,
  TreeBuilder,
} from '../fstree/index.ts';
import { formatPlatform, type Platform } from '../oci/index.ts';

/**
 * `files:` → the app tree. Host files are read lazily (only their size is taken now) and normalised so the result
 * does not depend on the machine: modes are 0755 for anything executable and 0644 otherwise unless `mode` is given
 * (so umask and checkout tools do not matter), owners are root unless `owner` is given, mtimes are the epoch,
 * setuid/setgid bits from the host are dropped.
 */

export type IdResolver = (owner: string | number, where: string) => { uid: number; gid: number };

/** Returns a resolver for `uid[:gid]` where each part is a number or a known name. */
export function ownerResolver(
  users: Map<string, { uid: number; gid: number }>,
  groups: Map<string, number>,
): IdResolver {
  return (owner, where) => {
    if (typeof owner === 'number') return { uid: owner, gid: owner };
    const [u, g] = owner.split(':');
    const user = /^\d+$/.test(u!) ? { uid: Number(u), gid: Number(u) } : users.get(u!);
    if (!user) {
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: unknown user ${JSON.stringify(u)}; use a number or one of: ${[...users.keys()].sort().join(', ')}`,
      );
    }
    if (g === undefined) return user;
    const gid = /^\d+$/.test(g) ? Number(g) : groups.get(g);
    if (gid === undefined)
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: unknown group ${JSON.stringify(g)}; use a number or one of: ${[...groups.keys()].sort().join(', ')}`,
      );
    return { uid: user.uid, gid };
  };
}

/** The schema lets only octal strings through ("0755", "755"); a YAML number never reaches here. */
function parseMode(m: string | undefined): number | undefined {
  return m === undefined ? undefined : Number.parseInt(m, 8);
}

export interface FilesOptions {
  /**
   * Lets `src:` name host paths outside the build context (the directory of pare.yaml, symlinks resolved), as
   * `pare build --allow-outside-context` does. Default false: such a source is refused.
   */
  readonly allowOutsideContext?: boolean;
  /**
   * The platform the tree is for: entries with `platforms:` not naming it are left out, and `{arch}`, `{os}`,
   * `{variant}` in `src:` are expanded to its OCI names. Without it, such entries are refused.
   */
  readonly platform?: Platform;
}

/**
 * Returns `src` with its placeholders expanded for `platform` (OCI names: `amd64`, `arm64`, `arm` + `v7`). Throws
 * CONFIG_INVALID when the platform has no variant for `{variant}`, or there is no platform.
 */
export function expandSource(src: string, platform: Platform | undefined, where: string): string {
  return src.replace(/\{(arch|os|variant)\}/g, (_m, name: 'arch' | 'os' | 'variant') => {
    if (!platform)
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: src ${JSON.stringify(src)} needs a platform for {${name}}`,
      );
    const value = name === 'arch' ? platform.architecture : platform[name];
    if (!value)
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: src ${JSON.stringify(src)} has {variant} but ${formatPlatform(platform)} has no variant; limit the entry with platforms: or drop {variant}`,
      );
    return value;
  });
}

/** Returns the `files:` entries that apply to `platform` (all without one), by index in the config. */
export function filesFor(loaded: LoadedConfig, platform: Platform | undefined): number[] {
  const name = platform && formatPlatform(platform);
  const all = loaded.config.platforms;
  const out: number[] = [];
  for (const [i, f] of loaded.config.files.entries()) {
    for (const [j, p] of (f.platforms ?? []).entries())
      if (!all.includes(p))
        throw new UsageError(
          'CONFIG_INVALID',
          `${loaded.locate(['files', i, 'platforms', j])}: ${p} is not one of the image's platforms (${all.join(', ')}); fix it or add it to platforms:`,
        );
    if (!f.platforms || name === undefined || f.platforms.includes(name)) out.push(i);
  }
  return out;
}

/**
 * Returns a key that is equal for two platforms exactly when their `files:` trees come from the same entries and
 * host paths (so one app layer serves both).
 */
export function filesVariant(loaded: LoadedConfig, platform: Platform): string {
  return JSON.stringify(
    filesFor(loaded, platform).map((i) => {
      const src = loaded.config.files[i]!.src;
      return [i, src === undefined ? null : expandSource(src, platform, loaded.locate(['files', i, 'src']))];
    }),
  );
}

/** Builds the tree of the `files:` section. Throws UsageError naming the config line for every bad entry. */
export async function filesTree(
  loaded: LoadedConfig,
  epoch: number,
  ids: IdResolver,
  options: FilesOptions = {},
): Promise<Tree> {
  const context = options.allowOutsideContext ? undefined : await buildContext(loaded);
  const b = new TreeBuilder({ mtime: epoch });
  const origin = new Map<string, string>();
  const specs = loaded.config.files;
  const claim = (p: string, where: string) => {
    const prev = origin.get(p);
    if (prev)
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: two entries for ${JSON.stringify(p)} (the other is at ${prev}); each image path may be given once`,
      );
    origin.set(p, where);
  };
  for (const i of filesFor(loaded, options.platform)) {
    const f = specs[i]!;
    const where = loaded.locate(['files', i, 'dest']);
    let dest: string;
    try {
      dest = normalizePath(f.dest);
    } catch (e) {
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: cannot use dest ${JSON.stringify(f.dest)}: ${(e as Error).message.replace(/^cannot use path "[^"]*": /, '')}`,
        { cause: e },
      );
    }
    if (!f.dest.startsWith('/'))
      throw new UsageError(
        'CONFIG_INVALID',
        `${where}: dest ${JSON.stringify(f.dest)} must be an absolute path in the image`,
      );
    if (dest === '/') throw new UsageError('CONFIG_INVALID', `${where}: dest cannot be "/"`);
    const own =
      f.owner !== undefined ? ids(f.owner, loaded.locate(['files', i, 'owner'])) : { uid: 0, gid: 0 };
    const mode = parseMode(f.mode);
    const meta = { uid: own.uid, gid: own.gid, mtime: epoch };
    try {
      if (f.content !== undefined) {
        claim(dest, where);
        b.put(dest, { ...meta, kind: 'file', mode: mode ?? 0o644, content: bufferContent(f.content) });
      } else if (f.symlink !== undefined) {
        claim(dest, where);
        b.put(dest, { ...meta, kind: 'symlink', mode: 0o777, target: f.symlink });
      } else if (f.dir) {
        claim(dest, where);
        b.put(dest, { ...meta, kind: 'dir', mode: mode ?? 0o755 });
      } else {
        await addHost(b, loaded, f, i, dest, mode, meta, claim, context, options.platform);
      }
    } catch (e) {
      if (e instanceof UsageError) throw e;
      if (e instanceof BaseError)
        throw new UsageError('CONFIG_INVALID', `${where}: ${e.message}`, { cause: e });
      throw e;
    }
  }
  return b.build();
}

async function addHost(
  b: TreeBuilder,
  loaded: LoadedConfig,
  f: FileSpec,
  i: number,
  dest: string,
  mode: number | undefined,
  meta: { uid: number; gid: number; mtime: number },
  claim: (p: string, where: string) => void,
  context: BuildContext | undefined,
  platform: Platform | undefined,
): Promise<void> {
  const where = loaded.locate(['files', i, 'src']);
  const src = resolve(loaded.dir, expandSource(f.src!, platform, where));
  // Refuse what is outside by its name before touching it, then what leaves through a symlink on the way.
  if (context && !isInside(src, context.dir)) throw outsideContext(where, f.src!, src, context);
  const st = await lstat(src).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `${where}: cannot read source ${JSON.stringify(f.src)} (${src}): ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`,
      { cause: e },
    );
  });
  if (context) {
    const real = await realSource(src, st);
    if (!isInside(real, context.real)) throw outsideContext(where, f.src!, real, context);
  }
  const norm = (kind: 'file' | 'dir', hostMode: number) =>
    mode ?? (kind === 'dir' || hostMode & 0o111 ? 0o755 : 0o644);
  if (st.isFile()) {
    claim(dest, where);
    b.put(dest, {
      ...meta,
      kind: 'file',
      mode: norm('file', st.mode),
      content: hostFileContentSized(src, st.size),
    });
    return;
  }
  if (st.isSymbolicLink()) {
    claim(dest, where);
    b.put(dest, { ...meta, kind: 'symlink', mode: 0o777, target: await readlink(src) });
    return;
  }
  if (!st.isDirectory())
    throw new UsageError(
      'INPUT_INVALID',
      `${where}: source ${JSON.stringify(f.src)} is neither a file, a directory nor a symlink`,
    );
  const host = await readHostDir(src);
  claim(dest, where);
  b.put(dest, { ...meta, kind: 'dir', mode: mode ?? 0o755 });
  const links: [string, Entry][] = [];
  for (const [p, e] of host) {
    if (p === '/') continue;
    const to = `${dest}${p}`;
    claim(to, where);
    let n: Entry;
    switch (e.kind) {
      case 'file':
        n = { ...meta, kind: 'file', mode: norm('file', e.mode), content: e.content };
        break;
      case 'dir':
        n = { ...meta, kind: 'dir', mode: norm('dir', e.mode) };
        break;
      case 'symlink':
        n = { ...meta, kind: 'symlink', mode: 0o777, target: e.target };
        break;
      case 'hardlink':
        links.push([
          to,
          { ...meta, kind: 'hardlink', mode: norm('file', e.mode), target: `${dest}${e.target}` },
        ]);
        continue;
      default:
        throw new UsageError(
          'INPUT_INVALID',
          `${where}: ${JSON.stringify(`${f.src}${p}`)} is a ${e.kind}; only files, directories and symlinks can be copied from the host`,
        );
    }
    b.put(to, n);
  }
  for (const [p, e] of links) b.put(p, e);
}

/**
 * Returns the host path pare.yaml's `output.layout` or `output.tar` names, refusing (exit 2) one outside the build
 * context like a `src:` (by name, then through a symlink of its nearest existing ancestor): building someone else's
 * project must not write where its pare.yaml points on the host. `-o`/`--tar` on the command line are the user's and
 * are not checked; `allowOutside` (`--allow-outside-context`) lifts this too.
 */
export async function outputPath(
  loaded: LoadedConfig,
  field: 'layout' | 'tar',
  allowOutside: boolean | undefined,
): Promise<string> {
  const spec = loaded.config.output[field]!;
  const path = resolve(loaded.dir, spec);
  if (allowOutside) return path;
  const context = await buildContext(loaded);
  const refuse = (where: string) =>
    new UsageError(
      'INPUT_INVALID',
      `${loaded.locate(['output', field])}: output.${field} ${JSON.stringify(spec)} is ${where}, outside the build context ${context.real} (the directory of pare.yaml, symlinks resolved); give the path on the command line (${field === 'tar' ? '--tar' : '-o'}), or run pare build --allow-outside-context`,
    );
  if (!isInside(path, context.dir)) throw refuse(path);
  let existing = path;
  for (;;) {
    const real = await realpath(existing).catch(() => undefined);
    if (real !== undefined) {
      const full = join(real, relative(existing, path));
      if (!isInside(full, context.real)) throw refuse(full);
      return path;
    }
    existing = dirname(existing);
  }
}

/** The build context: the directory of pare.yaml as written and with its symlinks resolved. */
interface BuildContext {
  readonly dir: string;
  readonly real: string;
}

async function buildContext(loaded: LoadedConfig): Promise<BuildContext> {
  return { dir: resolve(loaded.dir), real: await realpath(loaded.dir) };
}

/**
 * Returns the host path `src` really names: every symlink resolved, except a last component that is a symlink, which
 * is copied as a link (never followed), so only its directory is resolved.
 */
async function realSource(src: string, st: Stats): Promise<string> {
  return st.isSymbolicLink() ? join(await realpath(dirname(src)), basename(src)) : realpath(src);
}

function isInside(p: string, dir: string): boolean {
  const rel = relative(dir, p);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

function outsideContext(where: string, spec: string, path: string, context: BuildContext): UsageError {
  return new UsageError(
    'INPUT_INVALID',
    `${where}: source ${JSON.stringify(spec)} is ${path}, outside the build context ${context.real} (the directory of pare.yaml, symlinks resolved); copy it into the project, or run pare build --allow-outside-context to allow it`,
  );
}

/**
 * Refuses (exit 2) a `files:` destination that would replace a symlink of the tree below it: `/bin/tool` where `/bin`
 * is the merged-/usr link `bin → usr/bin` would turn /bin into a directory holding only the user's file, so
 * `#!/bin/sh` and every other /bin path would break. The message gives the path through the link (`/usr/bin/tool`),
 * where docker's COPY would have put it; pare does not rewrite what pare.yaml says. A `symlink:` entry at the link's
 * own path replaces it on purpose and is allowed.
 */
export function assertDestsKeepLinks(
  loaded: LoadedConfig,
  platform: Platform,
  lower: Tree | undefined,
): void {
  if (!lower) return;
  for (const i of filesFor(loaded, platform)) {
    const f = loaded.config.files[i]!;
    const dest = normalizePath(f.dest);
    const parts = dest.split('/').filter(Boolean);
    for (let n = 1; n <= parts.length; n++) {
      const at = `/${parts.slice(0, n).join('/')}`;
      const e = lower.get(at);
      if (e === undefined) break;
      if (e.kind !== 'symlink') continue;
      // A link to a file may be replaced by a file; only a link to a directory becomes a directory.
      if (lower.resolve(at).entry?.kind !== 'dir') break;
      if (n === parts.length && f.symlink !== undefined) break;
      const through = lower.resolve(dest, { follow: n === parts.length }).path;
      throw new UsageError(
        'CONFIG_INVALID',
        `${loaded.locate(['files', i, 'dest'])}: dest ${dest} would replace the symlink ${at} → ${e.target} of the ${formatPlatform(platform)} image with a directory (breaking every path through it); write dest: ${through}`,
      );
    }
  }
}

/** Throws a UsageError for the first symlink in `tree` that cannot be resolved because it loops. */
export function checkSymlinkLoops(tree: Tree, what: string): void {
  for (const [p, e] of tree) {
    if (e.kind !== 'symlink') continue;
    try {
      tree.resolve(p);
    } catch (err) {
      throw new UsageError(
        'INPUT_INVALID',
        `cannot build ${what}: the symlink ${JSON.stringify(p)} → ${JSON.stringify(e.target)} is part of a loop; fix or remove it`,
        { cause: err },
      );
    }
  }
}
