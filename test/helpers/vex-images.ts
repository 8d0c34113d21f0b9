import { execFileSync } from 'node:child_process';
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The images `pare vex` is tested and benchmarked on: curl, python3 and git built by pare from the real Debian archive
 * (the host's apt sources), and an INDEPENDENT check of what their ELF files import: umoci unpacks the image and
 * binutils' readelf lists each file's undefined dynamic symbols. No pare code is involved in the check.
 */

export const VEX_IMAGES = {
  curl: { packages: ['base-files', 'ca-certificates', 'curl'], entrypoint: '/usr/bin/curl', keep: [] },
  python: {
    packages: ['base-files', 'netbase', 'tzdata', 'ca-certificates', 'python3'],
    entrypoint: '/usr/bin/python3',
    keep: [],
  },
  // git's http helpers are separate programs git runs: kept, so the image can fetch over https.
  git: {
    packages: ['base-files', 'ca-certificates', 'git'],
    entrypoint: '/usr/bin/git',
    keep: ['/usr/lib/git-core/git-remote-http', '/usr/lib/git-core/git-remote-https'],
  },
} as const;
export type VexImageName = keyof typeof VEX_IMAGES;

/** Writes the pare.yaml of one of the images into `dir` (a bookworm build, amd64). */
export function writeVexProject(dir: string, name: VexImageName): string {
  const spec = VEX_IMAGES[name];
  const p = join(dir, name);
  mkdirSync(p, { recursive: true });
  writeFileSync(
    join(p, 'pare.yaml'),
    [
      `name: ${name}`,
      'debian:',
      '  suite: bookworm',
      `packages: [${spec.packages.join(', ')}]`,
      'platforms: [linux/amd64]',
      'image:',
      `  entrypoint: [${spec.entrypoint}]`,
      'output:',
      `  tag: ${name}`,
      ...(spec.keep.length > 0 ? ['slice:', `  keep: [${spec.keep.join(', ')}]`] : []),
      '',
    ].join('\n'),
  );
  return p;
}

/** Unpacks `oci:LAYOUT:TAG` with umoci (rootless) into `dest`. */
export function unpackWithUmoci(umoci: string, layout: string, tag: string, dest: string): void {
  execFileSync(umoci, ['raw', 'unpack', '--rootless', '--image', `${layout}:${tag}`, dest], {
    stdio: 'pipe',
  });
}

function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
}

/** ELF regular files under `root`, as image paths (`/usr/bin/curl`), sorted. */
export function elfFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size >= 4 && isElf(p)) out.push(`/${relative(root, p)}`);
    }
  };
  walk(root);
  return out.sort();
}

/** Per ELF file of an unpacked root: its SONAME and undefined dynamic symbols, as `readelf -W --dyn-syms -d` prints them. */
export interface ReadelfFacts {
  readonly soname: string | undefined;
  readonly undefined: ReadonlySet<string>;
}

/** Installed packages (`name` → version) from the unpacked root's dpkg status files (status.d, else status). */
export function dpkgVersions(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const texts: string[] = [];
  const d = join(root, 'var/lib/dpkg/status.d');
  try {
    for (const f of readdirSync(d)) if (!f.endsWith('.md5sums')) texts.push(readFileSync(join(d, f), 'utf8'));
  } catch {
    texts.push(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8'));
  }
  for (const t of texts)
    for (const stanza of t.split(/\n\n+/)) {
      const name = /^Package: (.+)$/m.exec(stanza)?.[1];
      const version = /^Version: (.+)$/m.exec(stanza)?.[1];
      if (name && version) out.set(name, version);
    }
  return out;
}

export function readelfFacts(readelf: string, root: string): Map<string, ReadelfFacts> {
  const out = new Map<string, ReadelfFacts>();
  for (const path of elfFiles(root)) {
    const text = execFileSync(readelf, ['-W', '--dyn-syms', '-d', join(root, path)], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    const soname = /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(text)?.[1];
    const und = new Set<string>();
    for (const line of text.split('\n')) {
      // "   12: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND inflate@ZLIB_1.2.0 (3)"
      const m = /^\s*\d+:\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+UND\s+([^@\s]+)/.exec(line);
      if (m) und.add(m[1]!);
    }
    out.set(path, { soname, undefined: und });
  }
  return out;
}

/**
 * The independent verdict for a function-level CVE: the files (other than the CVE's own libraries, by SONAME or file
 * name) whose undefined dynamic symbols include one of `functions`.
 */
export function readelfImporters(
  facts: ReadonlyMap<string, ReadelfFacts>,
  functions: readonly string[],
  libraries: readonly string[],
): string[] {
  const own = new Set(libraries);
  const out: string[] = [];
  for (const [path, f] of facts) {
    if ((f.soname && own.has(f.soname)) || own.has(path.slice(path.lastIndexOf('/') + 1))) continue;
    if (functions.some((fn) => f.undefined.has(fn))) out.push(path);
  }
  return out.sort();
}
