import { DEFAULT_PATH } from '../defaults.ts';
import {
  type ElfFile,
  ET,
  Loader,
  machineName,
  openElf,
  type RootFs,
  type RootStat,
  treeRootFs,
} from '../elf/index.ts';
import { BuildError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import { formatPlatform, type Platform, type RunConfig } from '../oci/index.ts';

/**
 * The last gate of `pare build`: the final root filesystem of each platform (packages after slicing, plus the user's
 * files) must be able to run. Checked on the tree the image unpacks to, with the ELF engine's ld.so-exact closure:
 * - every ELF program and shared object is for the platform's machine (an x86-64 binary in an arm64 image is refused);
 * - its PT_INTERP loader and every DT_NEEDED library resolve inside the tree, as ld.so would find them;
 * - the entrypoint (Entrypoint, else Cmd) exists, is executable, and is an ELF program or a `#!` script whose
 *   interpreter (and an `env` command's target) is in the tree, as execve and runc would find it.
 * A file that cannot be read as ELF although it starts with the ELF magic is a failure too (fail closed).
 */

/** Changes whenever what the check refuses changes: a remembered pass (build.ts) is keyed by it. */
export const CHECK_VERSION = 1;

/** e_machine of each OCI architecture. */
const MACHINE_OF: Readonly<Record<string, number>> = {
  amd64: 62,
  arm64: 183,
  arm: 40,
  '386': 3,
  ppc64le: 21,
  s390x: 22,
  riscv64: 243,
  mips64le: 8,
  loong64: 258,
};

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
/** Linux reads this much of a script for the `#!` line (BINPRM_BUF_SIZE). */
const SHEBANG_MAX = 256;
/** Linux follows at most this many nested `#!` interpreters (BINPRM_MAX_RECURSION). */
const MAX_SHEBANG_DEPTH = 4;
/** Problems listed in one error; the rest are counted. */
const MAX_LISTED = 20;

function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && ELF_MAGIC.every((b, i) => head[i] === b);
}

/** Returns the problems that keep the image of `platform` from running (empty when it can run), sorted by path. */
export async function runnableProblems(
  tree: Tree,
  platform: Platform,
  config: Pick<RunConfig, 'Entrypoint' | 'Cmd' | 'Env' | 'WorkingDir'>,
): Promise<string[]> {
  const plat = formatPlatform(platform);
  const want = MACHINE_OF[platform.architecture];
  if (want === undefined)
    return [
      `cannot check ELF files for ${plat}: pare does not know the ELF machine of "${platform.architecture}"`,
    ];
  const fs = treeRootFs(tree, plat);
  const loader = new Loader(fs);
  const problems: string[] = [];
  for (const [path, entry] of tree) {
    if (entry.kind !== 'file' || entry.content.size < 4) continue;
    if (!isElf(await entry.content.read(0, 4))) continue;
    let elf: ElfFile;
    try {
      elf = await openElf(entry.content, path);
    } catch (e) {
      problems.push(`${path}: cannot read it as ELF (${(e as Error).message})`);
      continue;
    }
    const h = elf.header;
    if (h.type !== ET.EXEC && h.type !== ET.DYN) continue;
    if (h.machine !== want) {
      problems.push(
        `${path} is a ${machineName(h.machine)} ELF file (e_machine ${h.machine}), not ${machineName(want)} as ${plat} needs; build it for ${plat} or limit it to the platforms it is for`,
      );
      continue;
    }
    const interp = await elf.interpreter();
    const needed = (await elf.dynamic())?.needed ?? [];
    if (interp === undefined && needed.length === 0) continue;
    const c = await loader.closure(path, elf);
    if (c.missingInterpreter)
      problems.push(`${path} needs the dynamic loader ${c.missingInterpreter}, which is not in the image`);
    for (const m of c.missing)
      problems.push(`${path} needs the library ${m}, which ld.so does not find in the image`);
  }
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (argv.length > 0) problems.push(...(await entrypointProblems(fs, argv[0]!, config, plat)));
  return [...new Set(problems)].sort();
}

/** Throws BUILD_NOT_RUNNABLE listing what keeps the image of `platform` from running. */
export async function assertRunnable(
  tree: Tree,
  platform: Platform,
  config: Pick<RunConfig, 'Entrypoint' | 'Cmd' | 'Env' | 'WorkingDir'>,
  source: string,
): Promise<void> {
  const problems = await runnableProblems(tree, platform, config);
  if (problems.length === 0) return;
  const listed = problems.slice(0, MAX_LISTED).map((p) => `\n  ${p}`);
  const more = problems.length > MAX_LISTED ? `\n  … and ${problems.length - MAX_LISTED} more` : '';
  throw new BuildError(
    'BUILD_NOT_RUNNABLE',
    `cannot build ${source}: the ${formatPlatform(platform)} image cannot run:${listed.join('')}${more}`,
    { platform: formatPlatform(platform) },
  );
}

function pathDirs(env: readonly string[] | undefined): string[] {
  const kv = (env ?? []).find((e) => e.startsWith('PATH='));
  return (kv ? kv.slice(5) : DEFAULT_PATH).split(':').filter((d) => d.startsWith('/'));
}

/** Finds `cmd` as runc does: a path as is (against the working directory), a bare name on PATH (executables only). */
async function lookup(
  fs: RootFs,
  cmd: string,
  dirs: readonly string[],
  cwd: string,
): Promise<RootStat | undefined> {
  const stat = (p: string) => fs.stat(p).catch(() => undefined);
  if (cmd.includes('/')) return stat(cmd.startsWith('/') ? cmd : `${cwd.replace(/\/+$/, '')}/${cmd}`);
  for (const d of dirs) {
    const st = await stat(`${d.replace(/\/+$/, '')}/${cmd}`);
    if (st?.kind === 'file' && (st.mode & 0o111) !== 0) return st;
  }
  return undefined;
}

async function entrypointProblems(
  fs: RootFs,
  argv0: string,
  config: Pick<RunConfig, 'Env' | 'WorkingDir'>,
  plat: string,
): Promise<string[]> {
  const dirs = pathDirs(config.Env);
  const cwd = config.WorkingDir ?? '/';
  const what = `entrypoint ${JSON.stringify(argv0)}`;
  let st: RootStat | undefined = await lookup(fs, argv0, dirs, cwd);
  if (!st)
    return [
      argv0.includes('/')
        ? `${what} is not in the image`
        : `${what} is not found on PATH=${dirs.join(':')} in the image`,
    ];
  for (let depth = 0; ; depth++) {
    if (st.kind !== 'file') return [`${what}: ${st.path} is not a regular file`];
    if ((st.mode & 0o111) === 0)
      return [
        `${what}: ${st.path} is not executable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`,
      ];
    const src = (await fs.open(st.path))!;
    const head: Uint8Array = await src.read(0, Math.min(SHEBANG_MAX, src.size));
    // An ELF program's loader and libraries are checked with every other ELF file.
    if (isElf(head)) return [];
    if (head[0] !== 0x23 || head[1] !== 0x21)
      return [`${what}: ${st.path} is neither an ELF program nor a #! script, so execve cannot run it`];
    if (depth >= MAX_SHEBANG_DEPTH) return [`${what}: too many nested #! interpreters`];
    const text: string = Buffer.from(head.subarray(2)).toString('latin1');
    const nl = text.indexOf('\n');
    const line = (nl < 0 ? text : text.slice(0, nl)).trim();
    const [interp, ...args]: string[] = line.split(/[ \t]+/);
    if (!interp) return [`${what}: ${st.path} has an empty #! line`];
    const script = st.path;
    st = await fs.stat(interp).catch(() => undefined);
    if (!st)
      return [
        `${what}: ${script} needs the interpreter ${interp}, which is not in the ${plat} image (add its package; for /bin/sh: packages: [dash] and shell: true)`,
      ];
    if (interp.endsWith('/env')) {
      const words = args
        .join(' ')
        .split(/[ \t]+/)
        .filter(Boolean);
      const target = words.find((w) => !w.startsWith('-') && !w.includes('='));
      if (target && !(await lookup(fs, target, dirs, cwd)))
        return [
          `${what}: ${script} runs "${target}" through env, which is not found on PATH=${dirs.join(':')}`,
        ];
    }
  }
}
