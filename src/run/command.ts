import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hostSource, openElf } from '../elf/index.ts';
import { RunError } from '../errors.ts';
import { normalizePath } from '../fstree/index.ts';
import { lookupInRoot } from './rootfs.ts';
import type { ProcessSpec } from './spec.ts';

/**
 * Checks, before the sandbox starts, that the command can be executed in the image: found (on the sandbox's PATH when
 * it has no slash), executable, and, for a script or a dynamically linked ELF, that its interpreter (`#!` line or
 * PT_INTERP) is in the image too. Otherwise execve fails inside bwrap with a bare "No such file or directory" that
 * does not say which file is missing: a files-only image whose entrypoint is a shell script is the common case.
 */

/** Bytes read to find a `#!` line (the kernel's BINPRM_BUF_SIZE is 256). */
const SHEBANG_READ = 256;

function notRunnable(argv0: string, why: string): RunError {
  return new RunError('RUN_NO_COMMAND', `cannot run ${JSON.stringify(argv0)}: ${why}`);
}

/** Returns the canonical path of the command inside `rootfs`, or throws RUN_NO_COMMAND saying what is missing. */
export async function checkCommand(rootfs: string, proc: ProcessSpec): Promise<string> {
  const argv0 = proc.argv[0]!;
  const path = new Map(proc.env).get('PATH') ?? '';
  let found: string | undefined;
  if (argv0.includes('/')) {
    const p = argv0.startsWith('/') ? argv0 : `${proc.cwd}/${argv0}`;
    const hit = await lookupInRoot(rootfs, p);
    if (hit.kind === 'file') found = hit.path;
    else if (hit.kind !== 'missing')
      throw notRunnable(argv0, `it is a ${hit.kind === 'dir' ? 'directory' : 'special file'} in the image`);
  } else {
    for (const dir of path.split(':')) {
      if (!dir.startsWith('/')) continue;
      const hit = await lookupInRoot(rootfs, `${dir}/${argv0}`);
      if (hit.kind === 'file') {
        found = hit.path;
        break;
      }
    }
  }
  if (!found) {
    throw notRunnable(
      argv0,
      argv0.includes('/')
        ? 'no such file in the image'
        : `not found in the image on PATH=${JSON.stringify(path)}`,
    );
  }
  const host = join(rootfs, found);
  const st = await stat(host);
  // Inside the sandbox every file is owned by the sandbox user (bwrap maps the caller's uid to it), so the owner bits decide.
  if ((st.mode & 0o100) === 0)
    throw notRunnable(argv0, `${found} is not executable (mode ${(st.mode & 0o7777).toString(8)})`);
  const interp = await interpreterOf(host, st.size, found);
  if (interp) {
    const hit = await lookupInRoot(
      rootfs,
      interp.path.startsWith('/') ? interp.path : normalizePath(`${proc.cwd}/${interp.path}`),
    );
    if (hit.kind !== 'file') {
      throw notRunnable(
        argv0,
        `${found} needs ${interp.kind === 'script' ? 'the interpreter' : 'the dynamic loader'} ${interp.path}, which is not in the image (add the package that provides it, or use a static binary)`,
      );
    }
  }
  return found;
}

async function interpreterOf(
  host: string,
  size: number,
  name: string,
): Promise<{ kind: 'script' | 'elf'; path: string } | undefined> {
  const fh = await open(host, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(Math.min(SHEBANG_READ, size));
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  if (head[0] === 0x23 && head[1] === 0x21) {
    const line = head.subarray(2).toString('latin1').split('\n')[0]!.trim();
    const interp = line.split(/[ \t]/)[0];
    return interp ? { kind: 'script', path: interp } : undefined;
  }
  if (head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    try {
      const elf = await openElf(hostSource(host, size), name);
      const p = await elf.interpreter();
      return p ? { kind: 'elf', path: p } : undefined;
    } catch {
      return undefined; // a malformed ELF: let the kernel say so
    }
  }
  return undefined;
}
