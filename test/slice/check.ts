import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Loader, treeRootFs } from '../../src/elf/index.ts';
import type { Tree } from '../../src/fstree/index.ts';
import { materializeTree, startSandbox, type Volume } from '../../src/run/index.ts';

const ELF = [0x7f, 0x45, 0x4c, 0x46];

/** Returns every regular file of `tree` that starts with the ELF magic, sorted. */
export async function elfFiles(tree: Tree): Promise<string[]> {
  const out: string[] = [];
  for (const [p, e] of tree) {
    if (e.kind !== 'file' || e.content.size < 4) continue;
    const head = await e.content.read(0, 4);
    if (ELF.every((b, i) => head[i] === b)) out.push(p);
  }
  return out;
}

/**
 * Returns, for every ELF file of `tree`, what ld.so would not find inside the tree (missing libraries, a missing
 * interpreter), checked with a fresh loader over the tree alone. Empty when every closure resolves.
 */
export async function unresolvedClosures(tree: Tree): Promise<{ checked: number; problems: string[] }> {
  const loader = new Loader(treeRootFs(tree, 'sliced'));
  const problems: string[] = [];
  const files = await elfFiles(tree);
  for (const f of files) {
    const c = await loader.closure(f);
    for (const m of c.missing) problems.push(`${f}: ${m}`);
    if (c.missingInterpreter) problems.push(`${f}: interpreter ${c.missingInterpreter}`);
  }
  return { checked: files.length, problems };
}

/** Returns the regular-file bytes of a tree. */
export function treeBytes(tree: Tree): number {
  let n = 0;
  for (const [, e] of tree) if (e.kind === 'file') n += e.content.size;
  return n;
}

/** Writes `tree` to a fresh temp dir (below `parent`) and returns its path. */
export async function unpack(tree: Tree, parent = tmpdir()): Promise<string> {
  const dir = join(mkdtempSync(join(parent, 'pare-slice-run-')), 'root');
  await materializeTree(tree, dir);
  return dir;
}

/** Runs `argv` in the bubblewrap sandbox over an unpacked root; returns exit code and output. */
export async function runInSandbox(
  rootfs: string,
  argv: readonly string[],
  options: { env?: Record<string, string>; net?: boolean; volumes?: readonly Volume[] } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/home/nonroot', ...options.env };
  const h = await startSandbox(
    {
      rootfs,
      process: {
        argv,
        env: Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1)),
        cwd: '/',
        hostname: 'pare',
      },
      user: { uid: 65532, gid: 65532, home: '/home/nonroot', source: 'default' },
      net: options.net ?? false,
      ...(options.volumes ? { volumes: options.volumes } : {}),
    },
    { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' },
  );
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  h.stdout!.on('data', (c: Buffer) => out.push(c));
  h.stderr!.on('data', (c: Buffer) => err.push(c));
  const code = await h.exited;
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
