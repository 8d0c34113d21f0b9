/**
 * Reads `strace -f -y -e trace=file,process` output of `bwrap … -- CMD` and returns the image paths CMD and its
 * descendants touched successfully. Pure; no I/O.
 *
 * strace runs on the host and traces bwrap itself, so the log starts with bwrap setting the sandbox up (host paths).
 * A process counts as "in the image" from its first successful execve on (bwrap execs the command only after
 * pivot_root, so every path after that is an image path), and a process cloned by one that is in the image is in it
 * from birth (threads, fork without exec). Failed execve attempts right before the successful one (execvp's PATH
 * search) count too. `-y` prints each descriptor with its path (`AT_FDCWD</app>`, `3</usr/lib>`), so paths relative
 * to a directory descriptor or to the working directory are made absolute. Relative paths of the non-`*at` calls use
 * the last working directory strace showed for that process. Inside the sandbox's pid namespace a clone returns the
 * child's pid in that namespace; strace's `--pidns-translation` (straceArgs) adds the host pid the log lines use.
 */

interface Rec {
  readonly pid: number;
  readonly seq: number;
  readonly call: string;
  readonly args: string;
  readonly ret: string;
}

const LINE = /^(\d+)\s+(.*)$/;
const CLONES = new Set(['clone', 'clone3', 'fork', 'vfork']);
const EXECS = new Set(['execve', 'execveat']);
/** Calls whose first argument is a directory descriptor and whose second is a path. */
const AT_CALLS = new Set([
  'openat',
  'openat2',
  'newfstatat',
  'fstatat64',
  'statx',
  'faccessat',
  'faccessat2',
  'readlinkat',
  'execveat',
  'name_to_handle_at',
  'futimesat',
  'utimensat',
  'fchmodat',
  'fchownat',
  'mkdirat',
  'mknodat',
  'unlinkat',
  'inotify_add_watch',
]);

/** Joins `<unfinished ...>`/`<... x resumed>` halves and returns complete records in start order. */
function records(text: string): Rec[] {
  const out: (Rec | undefined)[] = [];
  const pending = new Map<number, { seq: number; head: string }>();
  let seq = 0;
  const finish = (pid: number, s: number, body: string) => {
    const m = /^([a-z0-9_]+)\((.*)\)\s+=\s+(.*)$/s.exec(body);
    if (!m) return;
    out[s] = { pid, seq: s, call: m[1]!, args: m[2]!, ret: m[3]! };
  };
  for (const raw of text.split('\n')) {
    const lm = LINE.exec(raw);
    if (!lm) continue;
    const pid = Number(lm[1]);
    const body = lm[2]!;
    if (body.startsWith('+++') || body.startsWith('---')) continue;
    const unfinished = body.endsWith('<unfinished ...>');
    const resumed = /^<\.\.\. ([a-z0-9_]+) resumed>(.*)$/s.exec(body);
    if (resumed) {
      const p = pending.get(pid);
      if (!p) continue;
      pending.delete(pid);
      finish(pid, p.seq, `${p.head}${resumed[2]}`);
      continue;
    }
    const s = seq++;
    if (unfinished) {
      pending.set(pid, { seq: s, head: body.slice(0, -'<unfinished ...>'.length).trimEnd() });
      out.push(undefined);
      continue;
    }
    out.push(undefined);
    finish(pid, s, body);
  }
  return out.filter((r): r is Rec => r !== undefined);
}

/** Decodes a C string literal as strace prints it (`\n`, `\"`, `\\`, octal and `\x` escapes) from UTF-8 bytes. */
export function decodeStraceString(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
      continue;
    }
    const n = s[++i];
    if (n === undefined) break;
    const simple: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, '"': 34, '\\': 92, "'": 39 };
    if (n in simple) bytes.push(simple[n]!);
    else if (n === 'x') {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i))![0];
      bytes.push(Number.parseInt(m, 8));
      i += m.length - 1;
    } else bytes.push(n.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

const STRING = /^"((?:[^"\\]|\\.)*)"(\.\.\.)?/s;
const FD = /^(AT_FDCWD|-?\d+)(?:<((?:[^>\\]|\\.)*)>)?/;

function join(dir: string, rel: string): string {
  if (rel.startsWith('/')) return rel;
  return `${dir.replace(/\/+$/, '')}/${rel}`;
}

/** Returns the absolute path a record names, or undefined (no path argument, unknown directory). */
function pathOf(r: Rec, cwd: Map<number, string>): string | undefined {
  let a = r.args;
  if (AT_CALLS.has(r.call)) {
    const fd = FD.exec(a);
    if (!fd) return undefined;
    const dir = fd[2] === undefined ? undefined : decodeStraceString(fd[2]);
    if (fd[1] === 'AT_FDCWD' && dir !== undefined) cwd.set(r.pid, dir);
    a = a.slice(fd[0].length).replace(/^,\s*/, '');
    const s = STRING.exec(a);
    if (!s || s[2]) return undefined;
    const p = decodeStraceString(s[1]!);
    if (p === '') return dir; // AT_EMPTY_PATH: the descriptor itself
    if (p.startsWith('/')) return p;
    const base = fd[1] === 'AT_FDCWD' ? (dir ?? cwd.get(r.pid)) : dir;
    return base === undefined ? undefined : join(base, p);
  }
  const s = STRING.exec(a);
  if (!s || s[2]) return undefined;
  const p = decodeStraceString(s[1]!);
  if (p === '') return undefined;
  if (p.startsWith('/')) return p;
  const base = cwd.get(r.pid);
  return base === undefined ? undefined : join(base, p);
}

function ok(ret: string): boolean {
  return !/^-1\b/.test(ret) && ret !== '?';
}

/**
 * Returns the image paths (absolute, as the program spelled them; not resolved) that the traced command touched
 * successfully, sorted and unique. `cwd` is the command's initial working directory.
 */
export function parseStraceLog(text: string, options: { cwd?: string } = {}): string[] {
  const recs = records(text);
  if (recs.length === 0) return [];
  const rootPid = recs[0]!.pid;
  const execAt = new Map<number, number>();
  const parent = new Map<number, { pid: number; seq: number }>();
  const attempts = new Map<number, number[]>();
  for (const r of recs) {
    if (CLONES.has(r.call)) {
      // In the sandbox's pid namespace a clone returns the child's pid there; strace's --pidns-translation adds the
      // pid its log uses (`= 3 /* 26569 in strace's PID NS */`).
      const child = Number.parseInt(/\/\* (\d+) in strace's PID NS \*\//.exec(r.ret)?.[1] ?? r.ret, 10);
      if (child > 0 && !parent.has(child)) parent.set(child, { pid: r.pid, seq: r.seq });
      continue;
    }
    if (!EXECS.has(r.call)) {
      if (!execAt.has(r.pid)) attempts.delete(r.pid);
      continue;
    }
    if (execAt.has(r.pid)) continue;
    if (!ok(r.ret)) {
      attempts.set(r.pid, [...(attempts.get(r.pid) ?? []), r.seq]);
      continue;
    }
    // The first record of the trace is bwrap's own exec on the host.
    if (r.pid === rootPid && r.seq === recs[0]!.seq) continue;
    const first = attempts.get(r.pid)?.[0];
    execAt.set(r.pid, first ?? r.seq);
  }
  const inImage = (pid: number, seq: number, depth = 0): boolean => {
    const e = execAt.get(pid);
    if (e !== undefined && seq >= e) return true;
    const p = parent.get(pid);
    return p !== undefined && depth < 1000 && inImage(p.pid, p.seq, depth + 1);
  };
  const cwd = new Map<number, string>();
  const out = new Set<string>();
  for (const r of recs) {
    if (!inImage(r.pid, r.seq)) continue;
    if (!cwd.has(r.pid)) {
      const p = parent.get(r.pid);
      const inherited = p ? cwd.get(p.pid) : undefined;
      cwd.set(r.pid, inherited ?? options.cwd ?? '/');
    }
    if (CLONES.has(r.call)) continue;
    const p = pathOf(r, cwd);
    if (r.call === 'chdir' && p && ok(r.ret)) cwd.set(r.pid, p);
    // Failed execve attempts of the PATH search are kept out: only successes name files that exist.
    if (p === undefined || !ok(r.ret)) continue;
    if (
      p.startsWith('/proc/') ||
      p.startsWith('/dev/') ||
      p.startsWith('/sys/') ||
      p === '/proc' ||
      p === '/dev'
    )
      continue;
    out.add(p);
  }
  return [...out].sort();
}
