import picomatch from 'picomatch';
import { DEFAULT_PATH } from '../defaults.ts';
import { type Closure, Loader, multiarchTriplet, resolveImports, treeRootFs } from '../elf/index.ts';
import { SliceError } from '../errors.ts';
import {
  comparePaths,
  type Entry,
  isWithin,
  joinPath,
  parentPath,
  type Tree,
  TreeBuilder,
} from '../fstree/index.ts';
import { type InstalledPackage, ownership, readInstalled, rewriteMetadata, STATUS_D } from './packages.ts';
import type { ProbeOptions, Prober } from './probe.ts';
import { denied, isShellPath, pythonExcluded } from './rules.ts';
import { walk } from './walk.ts';

/**
 * Automatic slicing: the runtime closure of a root filesystem. From the roots (entrypoint/cmd, declared executables,
 * keep globs, probe traces) the slicer follows what the loader and the kernel follow (ELF interpreter and DT_NEEDED
 * exactly as ld.so finds them, `#!` interpreters, `env` targets on PATH, every symlink on the way), then adds the data
 * that kept code reads at run time (configuration of kept packages, CA bundle, zoneinfo, NSS modules, gconv modules
 * when iconv is used, Python's standard library), the licenses and dpkg metadata of kept packages and the accounts.
 * Everything else is dropped. Pure apart from the optional probe; deterministic (the walk runs in a fixed order and
 * every map is emitted sorted).
 */

/** Why a path was kept. */
export type Why =
  | 'root'
  | 'keep-glob'
  | 'elf-needed'
  | 'interpreter'
  | 'shebang'
  | 'package-data'
  | 'nss'
  | 'gconv'
  | 'python-stdlib'
  | 'node-builtin'
  | 'ca-bundle'
  | 'zoneinfo'
  | 'locale'
  | 'license'
  | 'dpkg-metadata'
  | 'base'
  | 'probe'
  | 'parent-dir'
  | 'symlink-chain';

export interface Reason {
  readonly why: Why;
  /** The kept path that needed this one (absent for roots and base files). */
  readonly from?: string;
  /** What exactly: the DT_NEEDED name, the glob, the root spec, the package, the probe command. */
  readonly detail?: string;
}

export interface SliceOptions {
  /** The image's Entrypoint. */
  readonly entrypoint?: readonly string[];
  /** The image's Cmd (arguments to the entrypoint, or the command when there is none). */
  readonly cmd?: readonly string[];
  /** The image's Env (`KEY=VALUE`); PATH is used to find commands (docker's default PATH when absent). */
  readonly env?: readonly string[];
  /** The image's WorkingDir (relative commands and arguments are found from here). Default `/`. */
  readonly workingDir?: string;
  /** More programs to keep (names looked up on PATH, or paths). */
  readonly executables?: readonly string[];
  /** Globs of absolute paths to keep whatever the rules say (picomatch syntax, dotfiles match); a matched directory keeps its subtree. */
  readonly keep?: readonly string[];
  /**
   * Exact paths to keep whatever the rules say, with their closure (the user's `files:`): no glob syntax, and a
   * directory keeps only itself (its parents are kept as bare directories like every kept path's).
   */
  readonly files?: readonly string[];
  /**
   * Globs of absolute paths to remove even when something needs them (picomatch syntax, dotfiles match; a matched
   * directory drops its subtree). Wins over every other rule and root; each drop of a wanted path is recorded in
   * `dropped` with the reason it would have been kept. A glob that matches nothing in the tree is SLICE_ROOT_NOT_FOUND.
   */
  readonly drop?: readonly string[];
  /** Keep shells and package-manager tooling when something reaches them. Default false. */
  readonly shell?: boolean;
  /** Locales to keep (`de`, `de_DE.UTF-8`); C/C.UTF-8 is always kept. */
  readonly locales?: readonly string[];
  /**
   * Commands to run under strace in a sandbox on the unsliced tree; every path they touch is kept. A string is split
   * on whitespace (no shell runs it).
   */
  readonly probe?: readonly (string | readonly string[])[];
  /** Runs the probe (default: the strace + bubblewrap prober). */
  readonly prober?: Prober;
  readonly probeOptions?: ProbeOptions;
  /** Owners of each path by package name (`assembleRootfs().owners`); default: from the dpkg md5sums in the tree. */
  readonly owners?: ReadonlyMap<string, readonly string[]>;
}

export interface PackageSummary {
  readonly filesBefore: number;
  readonly filesAfter: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** False when nothing of the package is left (its metadata was dropped too). */
  readonly kept: boolean;
  /** True when some of its files were removed (`X-Pare-Sliced: yes`). */
  readonly sliced: boolean;
}

export interface SliceTotals {
  /** Non-directory entries. */
  readonly files: number;
  /** Bytes of regular files. */
  readonly bytes: number;
}

/** A root the slice started from. */
export interface SliceRoot {
  readonly kind: 'entrypoint' | 'cmd' | 'argument' | 'executable' | 'keep' | 'files' | 'probe';
  /** As given (`python3`, `/app/*.py`, the probe command). */
  readonly spec: string;
  /** What it resolved to (canonical paths; several for a glob or a probe). */
  readonly paths: readonly string[];
}

/** A path `drop:` removed although something wanted it. */
export interface Dropped {
  /** The drop glob that matched the path or one of its directories. */
  readonly glob: string;
  /** Why it would have been kept (the first reason that asked for it). */
  readonly wanted: Reason;
}

export interface SliceResult {
  readonly tree: Tree;
  /** Every path of the sliced tree (the root excepted) with the reason it was kept, sorted. */
  readonly kept: ReadonlyMap<string, Reason>;
  /** Paths `drop:` removed although something wanted them, sorted. */
  readonly dropped: ReadonlyMap<string, Dropped>;
  /** Per package (status.d key), sorted. */
  readonly summary: ReadonlyMap<string, PackageSummary>;
  readonly before: SliceTotals;
  readonly after: SliceTotals;
  readonly roots: readonly SliceRoot[];
  /** Things the reader should know: dropped files something pointed at, missing libraries, probe notes. Sorted. */
  readonly notes: readonly string[];
}

const ROOT_REASONS = new Set<Why>(['root', 'keep-glob']);
/** Reasons that do not by themselves make a package "kept". */
const PASSIVE = new Set<Why>(['license', 'dpkg-metadata', 'parent-dir', 'base']);
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
/** Linux reads this much of a script for the `#!` line (BINPRM_BUF_SIZE). */
const SHEBANG_MAX = 256;
/** Files the nsswitch `files` source and the resolver read. */
const NSS_FILES = [
  '/etc/hosts',
  '/etc/services',
  '/etc/protocols',
  '/etc/networks',
  '/etc/ethers',
  '/etc/rpc',
  '/etc/host.conf',
  '/etc/gai.conf',
  '/etc/resolv.conf',
];
/** Files every image keeps when present. */
const BASE_FILES = [
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/os-release',
  '/usr/lib/os-release',
  '/etc/debian_version',
  '/tmp',
  '/root',
  '/home',
  STATUS_D,
];
/** NSS sources built into libc.so.6 since glibc 2.34 (the libnss_files/libnss_dns files left are empty stubs). */
const BUILTIN_NSS = new Set(['files', 'dns']);

/**
 * Returns the slice of `tree`: only what the roots need at run time, with the reason each path was kept. Throws
 * SLICE_ROOT_NOT_FOUND for an entrypoint, executable or keep glob the tree does not have, SLICE_SHELL_REQUIRED for a
 * root script run by a shell while `shell` is false, SLICE_OPTIONS_INVALID when there is no root at all, and the
 * prober's SLICE_PROBE_* errors. Does no I/O unless `probe` is given.
 *
 * @example
 * const { tree, kept } = await sliceTree(assembled.tree, { entrypoint: ['python3'], env: ['PATH=/usr/bin'] });
 */
export async function sliceTree(tree: Tree, options: SliceOptions): Promise<SliceResult> {
  const s = new Slicer(tree, options);
  return s.run();
}

class Slicer {
  readonly tree: Tree;
  readonly options: SliceOptions;
  readonly shell: boolean;
  readonly locales: readonly string[];
  readonly kept = new Map<string, Reason>();
  readonly dropped = new Map<string, Dropped>();
  readonly drops: readonly { readonly glob: string; readonly match: (p: string) => boolean }[];
  readonly notes = new Set<string>();
  readonly roots: SliceRoot[] = [];
  readonly loader: Loader;
  readonly pathDirs: string[];
  readonly cwd: string;
  readonly queue: string[] = [];
  readonly analyzed = new Set<string>();
  readonly inClosure = new Set<string>();
  readonly triggered = new Set<string>();
  packages: InstalledPackage[] = [];
  owners = new Map<string, string[]>();

  constructor(tree: Tree, options: SliceOptions) {
    this.tree = tree;
    this.options = options;
    this.shell = options.shell ?? false;
    this.locales = options.locales ?? [];
    this.loader = new Loader(treeRootFs(tree, 'slice'));
    const env = new Map<string, string>();
    for (const kv of options.env ?? []) {
      const i = kv.indexOf('=');
      if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    this.pathDirs = (env.get('PATH') ?? DEFAULT_PATH).split(':').filter((d) => d.startsWith('/'));
    this.cwd = options.workingDir ?? '/';
    this.drops = (options.drop ?? []).map((glob) => ({ glob, match: compileGlob(glob, 'drop') }));
    for (const { glob, match } of this.drops)
      if (!tree.paths().some((p) => p !== '/' && match(p)))
        throw new SliceError(
          'SLICE_ROOT_NOT_FOUND',
          `cannot slice: drop glob ${JSON.stringify(glob)} matches nothing in the tree (globs match absolute canonical paths such as "/usr/share/locale/**")`,
          { path: glob },
        );
  }

  /** Returns the drop glob matching `p` or one of its directories, if any. */
  dropGlob(p: string): string | undefined {
    if (this.drops.length === 0) return undefined;
    for (let q = p; q !== '/'; q = parentPath(q)) for (const d of this.drops) if (d.match(q)) return d.glob;
    return undefined;
  }

  /** Records that `p` was wanted for `reason` and dropped by `glob`; returns false (for `keep`). */
  refuse(p: string, glob: string, reason: Reason): false {
    if (!this.dropped.has(p)) this.dropped.set(p, { glob, wanted: reason });
    return false;
  }

  async run(): Promise<SliceResult> {
    this.packages = await readInstalled(this.tree);
    this.owners = ownership(this.tree, this.packages, this.options.owners);

    await this.addRoots();
    for (const p of BASE_FILES) this.keep(p, { why: 'base' });
    // Merged /usr: /bin, /sbin, /lib, /lib64 … stay links into /usr (every `#!/bin/sh` and PT_INTERP expects them).
    for (const top of this.tree.children('/')) {
      const e = this.tree.get(top);
      if (e?.kind === 'symlink' && e.target === `usr${top}`)
        this.keepEntry(top, { why: 'base', detail: 'merged /usr' });
    }
    // shell: true keeps /bin/sh (→ dash) and its closure, whether or not the entrypoint needs it.
    if (this.shell && this.safeWalk('/usr/bin/sh')?.entry) {
      const sh = this.safeWalk('/usr/bin/sh')!;
      this.roots.push({ kind: 'executable', spec: '/bin/sh (shell: true)', paths: [sh.path] });
      this.keep('/usr/bin/sh', { why: 'root', detail: 'shell: true' });
    }
    for (const home of await this.homes()) this.keep(home, { why: 'base', detail: '/etc/passwd home' });
    if (this.tree.get(this.cwd)) this.keep(this.cwd, { why: 'base', detail: 'WorkingDir' });

    // Fixpoint: code → its closure and data → the packages that became kept → their configuration → …
    let keptPackages = new Set<string>();
    for (;;) {
      await this.drain();
      const now = this.keptPackages();
      const fresh = [...now].filter((k) => !keptPackages.has(k)).sort();
      keptPackages = now;
      if (fresh.length === 0) break;
      for (const k of fresh) this.packageData(k);
    }

    for (const k of [...keptPackages].sort()) this.licenseAndMetadata(k);
    this.parentDirs();
    return this.finish(keptPackages);
  }

  // — roots —

  async addRoots(): Promise<void> {
    const o = this.options;
    const argv = [...(o.entrypoint ?? []), ...(o.cmd ?? [])];
    const hasRoots =
      argv.length > 0 ||
      (o.executables?.length ?? 0) > 0 ||
      (o.keep?.length ?? 0) > 0 ||
      (o.files?.length ?? 0) > 0 ||
      (o.probe?.length ?? 0) > 0;
    if (!hasRoots)
      throw new SliceError(
        'SLICE_OPTIONS_INVALID',
        'cannot slice: no roots; give an entrypoint or cmd, executables:, keep: globs or probe: commands (or use slice: none)',
      );
    if (argv.length > 0) {
      const kind = (o.entrypoint?.length ?? 0) > 0 ? 'entrypoint' : 'cmd';
      const found = this.lookupCommand(argv[0]!, kind);
      this.roots.push({ kind, spec: argv[0]!, paths: [found] });
      this.keepRoot(argv[0]!, found, { why: 'root', detail: `${kind} ${JSON.stringify(argv[0])}` });
      for (const arg of argv.slice(1)) {
        if (arg === '' || arg.startsWith('-') || arg.includes('\0')) continue;
        const p = this.absolute(arg);
        if (!p) continue;
        const w = this.safeWalk(p);
        if (w?.entry?.kind !== 'file') continue;
        this.roots.push({ kind: 'argument', spec: arg, paths: [w.path] });
        this.keepRoot(arg, p, { why: 'root', detail: `argument ${JSON.stringify(arg)}` });
      }
    }
    for (const x of o.executables ?? []) {
      const found = this.lookupCommand(x, 'executable');
      this.roots.push({ kind: 'executable', spec: x, paths: [found] });
      this.keepRoot(x, found, { why: 'root', detail: `executable ${JSON.stringify(x)}` });
    }
    for (const g of o.keep ?? []) this.keepGlob(g);
    if (o.files?.length) {
      for (const p of o.files) {
        if (!this.tree.get(p))
          throw new SliceError(
            'SLICE_ROOT_NOT_FOUND',
            `cannot slice: file ${JSON.stringify(p)} is not in the tree`,
            {
              path: p,
            },
          );
        const glob = this.dropGlob(p);
        if (glob)
          throw new SliceError(
            'SLICE_OPTIONS_INVALID',
            `cannot slice: drop glob ${JSON.stringify(glob)} removes ${JSON.stringify(p)}, one of the files given; remove one of them`,
            { path: glob },
          );
        this.keepEntry(p, { why: 'root', detail: 'files:' }, false);
      }
      this.roots.push({ kind: 'files', spec: 'files:', paths: [...o.files].sort(comparePaths) });
    }
    if ((o.probe?.length ?? 0) > 0) await this.runProbe();
  }

  /** Returns the absolute path of `p` against the working directory, or undefined when it cannot be one. */
  absolute(p: string): string | undefined {
    try {
      if (p.startsWith('/')) return p;
      return joinPath(this.cwd, p);
    } catch {
      return undefined;
    }
  }

  safeWalk(p: string): ReturnType<typeof walk> | undefined {
    try {
      return walk(this.tree, p);
    } catch {
      return undefined;
    }
  }

  /** Finds a command as runc does (exec.LookPath inside the root): a path as is, a bare name on PATH. */
  lookupCommand(cmd: string, what: string): string {
    const executable = (p: string) => {
      const w = this.safeWalk(p);
      const e = w?.entry?.kind === 'hardlink' ? this.tree.get(w.entry.target) : w?.entry;
      return e?.kind === 'file' && (e.mode & 0o111) !== 0;
    };
    if (cmd.includes('/')) {
      const p = this.absolute(cmd);
      if (p && executable(p)) return p;
      throw new SliceError(
        'SLICE_ROOT_NOT_FOUND',
        `cannot slice: ${what} ${JSON.stringify(cmd)} is not an executable file in the tree (working directory ${JSON.stringify(this.cwd)})`,
        { path: cmd },
      );
    }
    for (const d of this.pathDirs) {
      const p = `${d.replace(/\/+$/, '')}/${cmd}`;
      if (executable(p)) return p;
    }
    throw new SliceError(
      'SLICE_ROOT_NOT_FOUND',
      `cannot slice: ${what} ${JSON.stringify(cmd)} is not found on PATH ${JSON.stringify(this.pathDirs.join(':'))} in the tree; add its package or fix the image's PATH`,
      { path: cmd },
    );
  }

  keepRoot(spec: string, path: string, reason: Reason): void {
    const glob = this.dropGlob(this.safeWalk(path)?.path ?? path);
    if (glob)
      throw new SliceError(
        'SLICE_OPTIONS_INVALID',
        `cannot slice: ${JSON.stringify(spec)} is a root and drop glob ${JSON.stringify(glob)} removes it; remove one of them`,
        { path: glob },
      );
    if (!this.keep(path, reason, false))
      throw new SliceError(
        'SLICE_ROOT_NOT_FOUND',
        `cannot slice: ${JSON.stringify(spec)} is not in the tree`,
        {
          path,
        },
      );
  }

  keepGlob(glob: string): void {
    const match = compileGlob(glob, 'keep');
    const hits: string[] = [];
    for (const [p, e] of this.tree) {
      if (p === '/' || !match(p)) continue;
      hits.push(p);
      if (e.kind === 'dir') this.keepTree(p, { why: 'keep-glob', detail: glob }, () => true, false);
      else this.keepEntry(p, { why: 'keep-glob', detail: glob });
    }
    if (hits.length === 0)
      throw new SliceError(
        'SLICE_ROOT_NOT_FOUND',
        `cannot slice: keep glob ${JSON.stringify(glob)} matches nothing in the tree (globs match absolute canonical paths such as "/usr/share/zoneinfo/**")`,
        { path: glob },
      );
    this.roots.push({ kind: 'keep', spec: glob, paths: hits });
  }

  async runProbe(): Promise<void> {
    const prober =
      this.options.prober ?? (await import('./probe.ts')).straceProber(this.options.probeOptions ?? {});
    const commands = (this.options.probe ?? []).map((c) =>
      typeof c === 'string' ? c.split(/\s+/).filter(Boolean) : [...c],
    );
    const env = this.options.env ?? [];
    const trace = await prober.trace(this.tree, commands, {
      env,
      cwd: this.cwd,
      ...(this.options.probeOptions ?? {}),
    });
    for (let i = 0; i < commands.length; i++) {
      const spec = commands[i]!.join(' ');
      const paths = (trace[i] ?? []).filter((p) => this.safeWalk(p)?.entry !== undefined);
      this.roots.push({
        kind: 'probe',
        spec,
        paths: [...new Set(paths.map((p) => this.safeWalk(p)!.path))].sort(comparePaths),
      });
      for (const p of paths) {
        // A directory that was listed or stat'ed keeps only itself: its entries were touched one by one if needed.
        this.keep(p, { why: 'probe', detail: spec }, true);
      }
    }
  }

  // — keeping —

  /**
   * Keeps `path` (following symlinks, each link kept as 'symlink-chain') with `reason`; returns false when it leads
   * nowhere or is refused by the rules (`deniable` reasons only). Regular files are queued for analysis.
   */
  keep(path: string, reason: Reason, deniable = !ROOT_REASONS.has(reason.why)): boolean {
    const w = this.safeWalk(path);
    if (!w?.entry) return false;
    let target = w.path;
    let entry: Entry | undefined = w.entry;
    if (entry.kind === 'hardlink') {
      target = entry.target;
      entry = this.tree.get(target);
    }
    for (const p of [w.path, ...w.links, target]) {
      const glob = this.dropGlob(p);
      if (glob) return this.refuse(p, glob, reason);
    }
    if (deniable) {
      const why = denied(w.path, { shell: this.shell, locales: this.locales });
      if (why) {
        if (!PASSIVE.has(reason.why) && reason.why !== 'package-data')
          this.notes.add(
            `dropped ${w.path} (${why}), needed by ${reason.from ?? reason.detail ?? reason.why}`,
          );
        return false;
      }
    }
    for (const l of w.links) {
      if (!this.kept.has(l))
        this.kept.set(l, { why: 'symlink-chain', from: w.path, detail: `${path} → ${w.path}` });
    }
    if (w.path !== target) this.setReason(w.path, reason);
    this.setReason(
      target,
      w.path !== target ? { why: 'symlink-chain', from: w.path, detail: 'hardlink' } : reason,
    );
    if (entry?.kind === 'file' && !this.analyzed.has(target)) {
      this.analyzed.add(target);
      this.queue.push(target);
    }
    return true;
  }

  /** Keeps the entry at canonical `p` itself (a symlink as a link, and what it leads to). */
  keepEntry(p: string, reason: Reason, deniable = !ROOT_REASONS.has(reason.why)): void {
    const e = this.tree.get(p);
    if (e?.kind === 'symlink') {
      if (deniable && denied(p, { shell: this.shell, locales: this.locales })) return;
      const glob = this.dropGlob(p);
      if (glob) {
        this.refuse(p, glob, reason);
        return;
      }
      if (!this.safeWalk(p)?.entry) return; // a dangling link is of no use to anyone
      this.setReason(p, reason);
      this.keep(p, { why: 'symlink-chain', from: p, detail: `target of ${p}` }, deniable);
      return;
    }
    this.keep(p, reason, deniable);
  }

  /** Keeps directory `dir` and everything below it for which `include(rel)` is true. */
  keepTree(dir: string, reason: Reason, include: (rel: string) => boolean, deniable = true): void {
    const w = this.safeWalk(dir);
    if (w?.entry?.kind !== 'dir') return;
    const glob = this.dropGlob(w.path);
    if (glob) {
      // Record every path the tree would have kept, so why-kept explains each of them.
      this.refuse(w.path, glob, reason);
      for (const p of this.tree.paths())
        if (p !== w.path && isWithin(p, w.path) && include(p.slice(w.path.length + 1)))
          this.refuse(p, glob, reason);
      return;
    }
    if (!this.keep(dir, reason, deniable)) return;
    for (const p of this.tree.paths()) {
      if (p === w.path || !isWithin(p, w.path)) continue;
      if (!include(p.slice(w.path.length + 1))) continue;
      const e = this.tree.get(p)!;
      if (e.kind === 'dir') {
        const glob = this.dropGlob(p);
        if (glob) this.refuse(p, glob, reason);
        else if (!deniable || !denied(p, { shell: this.shell, locales: this.locales }))
          this.setReason(p, reason);
      } else this.keepEntry(p, reason, deniable);
    }
  }

  setReason(p: string, r: Reason): void {
    const old = this.kept.get(p);
    // A stronger reason replaces a weaker one, so why-kept shows the real chain rather than "parent of …".
    if (!old || old.why === 'parent-dir' || (old.why === 'symlink-chain' && r.why !== 'symlink-chain'))
      this.kept.set(p, r);
  }

  // — analysis —

  async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const p = this.queue.shift()!;
      await this.analyze(p);
    }
  }

  async analyze(path: string): Promise<void> {
    const f = this.tree.file(path);
    if (!f) return;
    const name = path.slice(path.lastIndexOf('/') + 1);
    const maybeCode = (f.mode & 0o111) !== 0 || /\.so([.-]|$)/.test(name) || /\.so\.\d/.test(name);
    if (!maybeCode || f.content.size < 4) return;
    // Executable modules of the standard library carry `#!/usr/bin/env python3` for `python -m`; they are imported.
    const pythonModule = this.kept.get(path)?.why === 'python-stdlib' && /\.py$/.test(name);
    if (pythonModule) return;
    const head = await f.content.read(0, SHEBANG_MAX);
    if (ELF_MAGIC.every((b, i) => head[i] === b)) await this.analyzeElf(path);
    else if (head[0] === 0x23 && head[1] === 0x21) this.analyzeShebang(path, head);
  }

  async analyzeElf(path: string): Promise<void> {
    let closure: Closure | undefined;
    const ensureClosure = async () => {
      closure ??= await this.loader.closure(path);
      return closure;
    };
    try {
      if (!this.inClosure.has(path)) {
        const c = await ensureClosure();
        for (const o of c.objects) this.inClosure.add(o.realPath);
        for (const o of c.objects.slice(1)) {
          const from = o.loader === undefined ? path : c.objects[o.loader]!.realPath;
          const why: Why = o.foundBy === 'interpreter' ? 'interpreter' : 'elf-needed';
          this.keep(o.path, { why, from, detail: o.name }, false);
          // ld.so picks a glibc-hwcaps variant by CPU; keep the baseline too so any CPU finds one.
          const hw = /^(.*)\/glibc-hwcaps\/[^/]+\/([^/]+)$/.exec(o.path);
          if (hw)
            this.keep(`${hw[1]}/${hw[2]}`, { why, from, detail: `${o.name} (baseline of ${o.path})` }, false);
        }
        for (const m of c.missing) this.notes.add(`${path}: library ${JSON.stringify(m)} is not in the tree`);
        if (c.missingInterpreter)
          this.notes.add(`${path}: interpreter ${c.missingInterpreter} is not in the tree`);
      }
      const elf = await this.loader.elfAt(path);
      if (typeof elf === 'string') return;
      const triplet = multiarchTriplet(elf);
      const name = path.slice(path.lastIndexOf('/') + 1);
      // gconv: iconv_open bound to libc loads modules from $LIB/gconv at run time (iconv/gconv_conf.c).
      const syms = await elf.dynamicSymbols();
      if (triplet && syms.some((s) => s.name === 'iconv_open' && s.shndx === 0)) {
        const c = await ensureClosure();
        const imports = await resolveImports(this.loader, c, 0);
        const imp = imports.find((i) => i.name === 'iconv_open');
        const provider = imp?.provider === undefined ? undefined : c.objects[imp.provider];
        if (provider && /^libc\.so/.test(provider.soname ?? '')) this.gconv(triplet, path);
      }
      if (/^libc\.so\.\d/.test(name) && triplet) await this.libcData(triplet, path);
      if (/^lib(ssl|crypto)\.so\.\d/.test(name)) this.openssl(path);
      const py = /^(?:python|libpython)(\d+\.\d+)(?:\.so.*)?$/.exec(name);
      if (py) this.python(py[1]!, path);
      if (/^(?:node|nodejs|libnode\.so.*)$/.test(name)) await this.nodeBuiltins(path);
    } catch (e) {
      this.notes.add(`${path}: cannot read as ELF (${(e as Error).message})`);
    }
  }

  analyzeShebang(path: string, head: Uint8Array): void {
    let line = Buffer.from(head).toString('latin1');
    const nl = line.indexOf('\n');
    if (nl < 0) return;
    line = line.slice(2, nl).trim();
    const [interp, ...args] = line.split(/[ \t]+/);
    if (!interp) return;
    const isRoot = ROOT_REASONS.has(this.kept.get(path)?.why ?? 'base');
    const w = this.safeWalk(interp);
    if (w?.entry && isShellPath(w.path) && !this.shell) {
      if (isRoot)
        throw new SliceError(
          'SLICE_SHELL_REQUIRED',
          `cannot slice: ${path} is a script run by ${interp}, a shell; set shell: true in pare.yaml or give it another interpreter`,
          { path },
        );
      this.notes.add(`dropped ${w.path} (a shell), interpreter of ${path}`);
      return;
    }
    if (!this.keep(interp, { why: 'shebang', from: path, detail: `#!${line}` }, !isRoot)) {
      if (!w?.entry) this.notes.add(`${path}: interpreter ${interp} is not in the tree`);
      return;
    }
    if (interp.endsWith('/env')) {
      // env(1): skip options (-S splits the rest; -u NAME; -i, -0, -v) and NAME=VALUE assignments.
      const words = args.flatMap((a) => a.split(/[ \t]+/)).filter(Boolean);
      let cmd: string | undefined;
      for (let i = 0; i < words.length; i++) {
        const a = words[i]!;
        if (a === '-u' || a === '--unset' || a === '-C' || a === '--chdir') {
          i++;
          continue;
        }
        if (a.startsWith('-') || a.includes('=')) continue;
        cmd = a;
        break;
      }
      if (!cmd) return;
      try {
        const found = this.lookupCommand(cmd, `interpreter of ${path}`);
        this.keep(found, { why: 'shebang', from: path, detail: `env ${cmd}` }, !isRoot);
      } catch (e) {
        if (isRoot) throw e;
        this.notes.add(`${path}: env target ${JSON.stringify(cmd)} is not on PATH in the tree`);
      }
    }
  }

  // — data that kept code reads —

  once(key: string): boolean {
    if (this.triggered.has(key)) return false;
    this.triggered.add(key);
    return true;
  }

  gconv(triplet: string, from: string): void {
    if (!this.once('gconv')) return;
    this.keepTree(`/usr/lib/${triplet}/gconv`, { why: 'gconv', from, detail: 'iconv_open' }, () => true);
  }

  async libcData(triplet: string, from: string): Promise<void> {
    if (!this.once('libc')) return;
    for (const p of NSS_FILES)
      this.keep(p, { why: 'nss', from: '/etc/nsswitch.conf', detail: 'files source' });
    await this.nss(triplet);
    if (this.tree.get('/usr/share/zoneinfo'))
      this.keepTree(
        '/usr/share/zoneinfo',
        { why: 'zoneinfo', from, detail: 'localtime(3) reads TZ rules' },
        () => true,
      );
    for (const p of ['/etc/localtime', '/etc/timezone']) this.keep(p, { why: 'zoneinfo', from });
    for (const d of ['/usr/lib/locale', '/usr/share/locale']) {
      for (const c of this.tree.children(d)) {
        if (!denied(c, { shell: this.shell, locales: this.locales }))
          this.keepTree(c, { why: 'locale', from, detail: c.slice(d.length + 1) }, () => true);
      }
    }
  }

  /** Keeps the NSS modules /etc/nsswitch.conf names, except those built into libc (files, dns). */
  async nss(triplet: string): Promise<void> {
    const f = this.tree.file('/etc/nsswitch.conf');
    if (!f) return;
    const text = new TextDecoder().decode(await f.content.bytes());
    const services = new Set<string>();
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      const m = /^[a-z_]+:\s*(.*)$/.exec(line);
      if (!m) continue;
      // Words like [NOTFOUND=return] are actions, not services.
      for (const w of m[1]!.split(/\s+/)) if (/^[a-z0-9_]+$/.test(w)) services.add(w);
    }
    for (const svc of [...services].sort()) {
      if (BUILTIN_NSS.has(svc)) continue;
      const lib = `/usr/lib/${triplet}/libnss_${svc}.so.2`;
      if (!this.keep(lib, { why: 'nss', from: '/etc/nsswitch.conf', detail: `service ${svc}` }))
        this.notes.add(
          `/etc/nsswitch.conf names service ${JSON.stringify(svc)} but ${lib} is not in the tree`,
        );
    }
  }

  openssl(from: string): void {
    if (!this.once('openssl')) return;
    // libssl reads OPENSSLDIR/openssl.cnf at init and CAs from OPENSSLDIR/cert.pem and certs/ (Debian: /usr/lib/ssl).
    this.keep('/usr/lib/ssl/openssl.cnf', { why: 'package-data', from, detail: 'OPENSSLDIR/openssl.cnf' });
    this.keep('/usr/lib/ssl/cert.pem', { why: 'ca-bundle', from, detail: 'OPENSSLDIR/cert.pem' });
    this.keep('/usr/lib/ssl/certs', { why: 'ca-bundle', from, detail: 'OPENSSLDIR/certs' });
    this.caBundle(from);
  }

  caBundle(from: string): void {
    if (!this.once('ca')) return;
    this.keep('/etc/ssl/certs/ca-certificates.crt', { why: 'ca-bundle', from, detail: 'system CA bundle' });
  }

  python(version: string, from: string): void {
    if (!this.once(`python${version}`)) return;
    const r: Reason = { why: 'python-stdlib', from, detail: `python${version}` };
    // _pydecimal is the pure-Python fallback decimal.py imports only when the C _decimal is missing.
    const cDecimal = this.tree
      .children(`/usr/lib/python${version}/lib-dynload`)
      .some((p) => /\/_decimal\.[^/]*so$/.test(p));
    this.keepTree(
      `/usr/lib/python${version}`,
      r,
      (rel) => !pythonExcluded(rel) && !(cDecimal && rel === '_pydecimal.py'),
    );
    for (const d of ['/usr/lib/python3/dist-packages', `/usr/local/lib/python${version}/dist-packages`])
      this.keepTree(d, r, (rel) => !/(^|\/)__pycache__(\/|$)/.test(rel));
    this.keep(`/etc/python${version}`, r);
    for (const c of this.tree.children(`/etc/python${version}`)) this.keepEntry(c, r);
    // mimetypes reads /etc/mime.types; ssl's default context reads the CA bundle.
    this.keep('/etc/mime.types', r);
    this.caBundle(from);
  }

  /**
   * Debian builds Node with some builtins outside the binary (`--shared-builtin-…-path`: cjs-module-lexer, undici,
   * acorn), loaded from /usr/share/nodejs at start-up; the paths are compiled in (NODE_SHARED_BUILTIN_*_PATH), so
   * they are read from the binary's bytes.
   */
  async nodeBuiltins(from: string): Promise<void> {
    const f = this.tree.file(from);
    if (!f) return;
    const text = Buffer.from(await f.content.bytes()).toString('latin1');
    const paths = new Set<string>();
    for (const m of text.matchAll(/\/usr\/share\/nodejs\/[\x21-\x7e]+?\.(?:js|mjs|cjs|json)(?=[\0"\s,])/g))
      paths.add(m[0]);
    for (const p of [...paths].sort())
      this.keep(p, { why: 'node-builtin', from, detail: 'shared builtin compiled into Node' });
  }

  // — packages —

  keptPackages(): Set<string> {
    const out = new Set<string>();
    for (const [p, r] of this.kept) {
      if (PASSIVE.has(r.why)) continue;
      for (const k of this.owners.get(p) ?? []) out.add(k);
    }
    // The CA bundle is made from ca-certificates' data by its postinst: it belongs to that package.
    if (this.kept.has('/etc/ssl/certs/ca-certificates.crt'))
      for (const p of this.packages) if (p.name === 'ca-certificates') out.add(p.key);
    return out;
  }

  #byPackage: Map<string, string[]> | undefined;
  ownedBy(key: string): readonly string[] {
    if (!this.#byPackage) {
      const m = new Map<string, string[]>();
      for (const [p, ks] of this.owners)
        for (const k of ks) {
          const l = m.get(k);
          if (l) l.push(p);
          else m.set(k, [p]);
        }
      for (const l of m.values()) l.sort(comparePaths);
      this.#byPackage = m;
    }
    return this.#byPackage.get(key) ?? [];
  }

  packageData(key: string): void {
    const owned = this.ownedBy(key);
    const anchor = owned.find((p) => this.kept.has(p) && !PASSIVE.has(this.kept.get(p)!.why));
    for (const p of owned) {
      if (!isWithin(p, '/etc') || isWithin(p, '/etc/ssl/certs')) continue;
      this.keepEntry(p, {
        why: 'package-data',
        ...(anchor ? { from: anchor } : {}),
        detail: `configuration of ${key}`,
      });
    }
  }

  licenseAndMetadata(key: string): void {
    // A package named by `owners` that status.d does not record (a classic /var/lib/dpkg/status, which pare slim
    // trims itself) keeps its license only.
    const pkg = this.packages.find((p) => p.key === key);
    const lic = { why: 'license' as const, detail: key };
    let found = false;
    for (const p of this.ownedBy(key))
      if (/^\/usr\/share\/doc\/[^/]+\/copyright$/.test(p)) found = this.keep(p, lic, false) || found;
    if (!found) this.keep(`/usr/share/doc/${pkg?.name ?? key}/copyright`, lic, false);
    if (!pkg) return;
    this.keep(pkg.stanzaPath, { why: 'dpkg-metadata', detail: key }, false);
    if (pkg.md5sumsPath) this.keep(pkg.md5sumsPath, { why: 'dpkg-metadata', detail: key }, false);
  }

  parentDirs(): void {
    for (const p of [...this.kept.keys()].sort(comparePaths)) {
      for (let q = parentPath(p); q !== '/' && !this.kept.has(q); q = parentPath(q))
        this.kept.set(q, { why: 'parent-dir', from: p });
    }
  }

  async homes(): Promise<string[]> {
    const f = this.tree.file('/etc/passwd');
    if (!f) return [];
    const text = new TextDecoder().decode(await f.content.bytes());
    const out: string[] = [];
    for (const line of text.split('\n')) {
      const home = line.split(':')[5];
      if (home?.startsWith('/') && this.safeWalk(home)?.entry?.kind === 'dir') out.push(home);
    }
    return out.sort();
  }

  /** One note per drop glob and what wanted its paths: `slice.drop "G" removed N paths needed by X (e.g. P)`. */
  dropNotes(): string[] {
    const groups = new Map<string, string[]>();
    for (const [p, d] of this.dropped) {
      if (PASSIVE.has(d.wanted.why)) continue;
      const k = `${JSON.stringify(d.glob)} removed \0 needed by ${d.wanted.from ?? d.wanted.detail ?? d.wanted.why}`;
      const l = groups.get(k);
      if (l) l.push(p);
      else groups.set(k, [p]);
    }
    return [...groups].map(([k, ps]) => {
      const sorted = ps.sort(comparePaths);
      const what = sorted.length === 1 ? sorted[0]! : `${sorted.length} paths (${sorted[0]}, …)`;
      return `slice.drop ${k.replace('\0', what)}`;
    });
  }

  // — result —

  async finish(keptPackages: ReadonlySet<string>): Promise<SliceResult> {
    const filtered = this.tree.filter((p) => this.kept.has(p));
    const b = TreeBuilder.from(filtered);
    const isKept = (p: string) => filtered.has(p);
    const sliced = new Set<string>();
    const summary = new Map<string, PackageSummary>();
    const size = (t: Tree, p: string) => {
      const e = t.get(p);
      return e?.kind === 'file' ? e.content.size : 0;
    };
    for (const pkg of this.packages) {
      const owned = this.ownedBy(pkg.key).filter((p) => this.tree.get(p) && this.tree.get(p)!.kind !== 'dir');
      const after = owned.filter(isKept);
      const kept = keptPackages.has(pkg.key);
      const s = after.length < owned.length;
      if (kept && s) sliced.add(pkg.key);
      summary.set(pkg.key, {
        filesBefore: owned.length,
        filesAfter: kept ? after.length : 0,
        bytesBefore: owned.reduce((n, p) => n + size(this.tree, p), 0),
        bytesAfter: kept ? after.reduce((n, p) => n + size(filtered, p), 0) : 0,
        kept,
        sliced: kept && s,
      });
    }
    rewriteMetadata(b, this.packages, keptPackages, sliced, isKept);
    const tree = b.build();
    const kept = new Map<string, Reason>();
    for (const p of tree.paths()) {
      if (p === '/') continue;
      kept.set(p, this.kept.get(p) ?? { why: 'parent-dir' });
    }
    return {
      tree,
      kept,
      summary,
      before: totals(this.tree),
      after: totals(tree),
      roots: this.roots,
      dropped: new Map([...this.dropped].sort(([a], [b]) => comparePaths(a, b))),
      notes: [...this.notes, ...this.dropNotes()].sort(),
    };
  }
}

/** Returns the matcher of a keep or drop glob (made absolute); SLICE_OPTIONS_INVALID when picomatch refuses it. */
function compileGlob(glob: string, kind: 'keep' | 'drop'): (p: string) => boolean {
  try {
    return picomatch(glob.startsWith('/') ? glob : `/${glob}`, { dot: true });
  } catch (cause) {
    throw new SliceError(
      'SLICE_OPTIONS_INVALID',
      `cannot use ${kind} glob ${JSON.stringify(glob)}: ${(cause as Error).message}`,
      { cause, path: glob },
    );
  }
}

function totals(t: Tree): SliceTotals {
  let files = 0;
  let bytes = 0;
  for (const [p, e] of t) {
    if (p === '/' || e.kind === 'dir') continue;
    files++;
    if (e.kind === 'file') bytes += e.content.size;
  }
  return { files, bytes };
}
