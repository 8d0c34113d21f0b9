import { DEFAULT_PATH } from '../defaults.ts';
import { baseName, joinPath, type Tree } from '../fstree/index.ts';
import { isExecutable, type LintConfig, namedPrograms } from './lint.ts';
import type { AuditFile } from './schema.ts';

/**
 * Image classification (src/audit/README.md, "Classification"): the most minimal class whose definition the image
 * meets, with the evidence that decided it. Classes, least to most minimal: full, slim, shell-less, binary-less,
 * distroless, scratch.
 */

export type ImageClass = 'full' | 'slim' | 'shell-less' | 'binary-less' | 'distroless' | 'scratch';

export interface Classification {
  readonly class: ImageClass;
  /** Sentences, each naming the paths that decided a step (sorted, stable). */
  readonly evidence: readonly string[];
  readonly shells: readonly string[];
  readonly packageManagers: readonly string[];
  /** The entrypoint's program as found in the image (canonical path), or null. */
  readonly entrypoint: string | null;
  /** Programs (ELF executables and `#!` scripts with an execute bit) other than the entrypoint's program and its closure. */
  readonly otherPrograms: readonly string[];
  /** Dynamically linked ELF files and shared objects (a runtime a distribution ships). */
  readonly sharedObjects: number;
}

const SHOWN = 5;

function list(paths: readonly string[]): string {
  return paths.length <= SHOWN
    ? paths.join(', ')
    : `${paths.slice(0, SHOWN).join(', ')} and ${paths.length - SHOWN} more`;
}

/** True when `path` resolves to a file named busybox (an applet link). */
function isBusyboxApplet(tree: Tree, path: string): boolean {
  let r = tree.resolve(path, { follow: true });
  if (r.entry?.kind === 'hardlink') r = { path: r.entry.target, entry: tree.get(r.entry.target) };
  return r.path !== path && baseName(r.path) === 'busybox';
}

/** The canonical path of the entrypoint's program (Entrypoint[0], else Cmd[0], looked up in $PATH), or null. */
export function entrypointProgram(tree: Tree, config: LintConfig | undefined): string | null {
  const argv0 = config?.Entrypoint?.[0] ?? config?.Cmd?.[0];
  if (!argv0) return null;
  return findProgram(tree, argv0, searchPath(config));
}

/** The directories of the config's PATH (Docker's default without one). */
function searchPath(config: LintConfig | undefined): string[] {
  const path = (config?.Env ?? []).find((kv) => kv.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  return path.split(':').filter((d) => d.startsWith('/'));
}

/** The canonical path of the program `name` runs (a path, or a name looked up in `dirs`), or null when none. */
function findProgram(tree: Tree, name: string, dirs: readonly string[]): string | null {
  const candidates = name.includes('/')
    ? [name.startsWith('/') ? name : joinPath('/', name)]
    : dirs.map((d) => joinPath(d, name));
  for (const c of candidates) {
    if (!isExecutable(tree, c)) continue;
    return tree.resolve(c, { follow: true }).path;
  }
  return null;
}

/** The program a `#!` line runs (through `/usr/bin/env NAME` too), or null when it is not in the image. */
function scriptInterpreter(tree: Tree, head: string, dirs: readonly string[]): string | null {
  const m = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(head);
  if (!m) return null;
  const interp = findProgram(tree, m[1]!, []);
  if (interp !== null && m[1]!.endsWith('/env') && m[2] && !m[2].startsWith('-'))
    return findProgram(tree, m[2], dirs);
  return interp;
}

/**
 * Classifies an image from its tree, run config and the audit's ELF files (with closures when computed). Without
 * closures (`--no-closure`) an image with a dynamic entrypoint cannot be shown distroless and stays binary-less.
 */
export async function classifyImage(
  tree: Tree,
  config: LintConfig | undefined,
  files: readonly AuditFile[],
): Promise<Classification> {
  const named = namedPrograms(tree);
  const shells = named.filter((n) => n.rule === 'shell-present').map((n) => n.path);
  // Busybox's dpkg and rpm applets unpack a local package and cannot fetch or resolve one: not a package manager.
  const packageManagers = named
    .filter((n) => n.rule === 'package-manager-present' && !isBusyboxApplet(tree, n.path))
    .map((n) => n.path);
  const entrypoint = entrypointProgram(tree, config);
  const elf = new Map(files.map((f) => [f.path, f]));
  const entryFile = entrypoint ? elf.get(entrypoint) : undefined;
  // The entrypoint's closure: its interpreter and every library ld.so loads (real paths).
  const closure = new Set<string>();
  if (entrypoint) closure.add(entrypoint);
  for (const l of entryFile?.libraries ?? []) closure.add(l.realPath);
  if (entryFile?.interpreter) closure.add(tree.resolve(entryFile.interpreter, { follow: true }).path);

  const pathDirs = searchPath(config);
  const otherPrograms: string[] = [];
  let sharedObjects = 0;
  for (const path of tree.paths()) {
    const e = tree.get(path)!;
    if (e.kind !== 'file') continue;
    const f = elf.get(path);
    if (f) {
      const linkage = f.hardening.linkage.value;
      if (linkage === 'dynamic' || linkage === 'standalone' || f.soname !== null) sharedObjects++;
      // A program: an ELF executable (EXEC, or DYN without a soname: PIE and static-pie) with an execute bit.
      const program =
        (e.mode & 0o111) !== 0 && (f.type === 'EXEC' || (f.type === 'DYN' && f.soname === null));
      if (program && !closure.has(path)) otherPrograms.push(path);
      continue;
    }
    if ((e.mode & 0o111) === 0 || e.content.size < 2 || closure.has(path)) continue;
    const head = Buffer.from(await tree.readFile(path));
    if (head[0] !== 0x23 || head[1] !== 0x21) continue;
    // A script is a program when its interpreter is a program in the image other than the entrypoint's: one whose
    // interpreter is the entrypoint (Python's stdlib modules with `#!/usr/bin/python3`) is that runtime's code, and
    // one whose interpreter is absent cannot run.
    const interp = scriptInterpreter(tree, head.toString('latin1', 0, Math.min(head.length, 256)), pathDirs);
    if (interp !== null && interp !== entrypoint) otherPrograms.push(path);
  }

  const evidence: string[] = [];
  let cls: ImageClass;
  if (shells.length > 0) {
    evidence.push(`shell: ${list(shells)}`);
    if (packageManagers.length > 0) {
      evidence.push(`package manager: ${list(packageManagers)}`);
      cls = 'full';
    } else {
      evidence.push('no package manager');
      cls = 'slim';
    }
  } else {
    evidence.push('no shell');
    if (packageManagers.length > 0 || otherPrograms.length > 0) {
      if (packageManagers.length > 0) evidence.push(`package manager: ${list(packageManagers)}`);
      const others = otherPrograms.filter((p) => !packageManagers.includes(p));
      if (others.length > 0)
        evidence.push(`programs besides the entrypoint's closure (${otherPrograms.length}): ${list(others)}`);
      cls = 'shell-less';
    } else {
      evidence.push(
        entrypoint
          ? `no program besides the entrypoint ${entrypoint} and its closure`
          : 'no programs (no entrypoint)',
      );
      if (sharedObjects === 0) {
        evidence.push('no dynamically linked ELF file or shared object (no distribution runtime)');
        cls = 'scratch';
      } else if (
        entryFile &&
        entryFile.hardening.linkage.value === 'dynamic' &&
        entryFile.libraries !== null &&
        entryFile.missing.length === 0 &&
        entryFile.missingInterpreter === null
      ) {
        evidence.push(
          `the entrypoint's runtime closure is complete (${entryFile.libraries.length} libraries, ${sharedObjects} shared objects in the image)`,
        );
        cls = 'distroless';
      } else {
        evidence.push(
          entryFile
            ? entryFile.libraries === null
              ? 'library closure not computed (--no-closure): distroless cannot be shown'
              : `the entrypoint's closure is incomplete or static while ${sharedObjects} shared objects are present`
            : `${sharedObjects} shared objects and no dynamically linked entrypoint`,
        );
        cls = 'binary-less';
      }
    }
  }
  return { class: cls, evidence, shells, packageManagers, entrypoint, otherPrograms, sharedObjects };
}
