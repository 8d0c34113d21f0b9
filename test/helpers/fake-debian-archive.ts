import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { xz } from '@napi-rs/lzma';
import * as openpgp from 'openpgp';
import type { ArchiveOptions } from '../../src/debian/index.ts';
import { craftElf } from '../../src/elf/index.ts';

/**
 * A Debian-style archive generated from tiny specs and served on 127.0.0.1 (after chisel's test archives): pool/*.deb
 * built in memory (ar + tar, written here rather than with dpkg-deb so tests can also build hostile members),
 * Packages/.gz/.xz per component and architecture, Release with SHA256 sums, InRelease clearsigned and Release.gpg
 * detached with an OpenPGP key made by openpgp, `by-hash/SHA256/<hex>` copies. It is served at `/` and, like a
 * snapshot service, at `/archive/debian{,-security}/<timestamp>/`. The server honours Range and lets a
 * test inject faults per request (status, rewritten body, truncation, a dropped connection) and count requests.
 */

export interface FakeFile {
  readonly content: string | Uint8Array;
  readonly mode?: number;
  /** Make a symlink with this target instead (content ignored). */
  readonly symlink?: string;
}

export interface FakePackage {
  readonly name: string;
  readonly version: string;
  /** Default: built for every architecture of the archive (like a real package); "all" goes into every index. */
  readonly architecture?: string;
  /** Extra control fields (Depends, Provides, Multi-Arch, …). */
  readonly fields?: Readonly<Record<string, string>>;
  /** Files of data.tar, by path without leading "./" (e.g. "usr/share/doc/foo/copyright"). */
  readonly files?: Readonly<Record<string, string | FakeFile>>;
  /** Use these bytes as the .deb instead of building one. */
  readonly deb?: Uint8Array;
}

export interface FakeSuite {
  /** Directory under dists/, e.g. "bookworm-security". */
  readonly name: string;
  /** Codename field; default `name`. */
  readonly codename?: string;
  /** Suite field; default "stable" for the first suite, else `name`. */
  readonly suite?: string;
  readonly packages: readonly FakePackage[];
  /** Component of the packages; default "main". */
  readonly component?: string;
  /** Release Date; default an hour before now. */
  readonly date?: Date;
  /** Release Valid-Until; default none. */
  readonly validUntil?: Date;
  /** Offer by-hash (Acquire-By-Hash: yes); default true. */
  readonly byHash?: boolean;
  /** Publish InRelease; default true (false → only Release + Release.gpg). */
  readonly inRelease?: boolean;
}

export interface FakeArchiveSpec {
  readonly suites: readonly FakeSuite[];
  /** Architectures of the indexes; default ["amd64"]. */
  readonly architectures?: readonly string[];
  /** Key to sign with; default a fresh ed25519 key (see `key`). */
  readonly signingKey?: openpgp.PrivateKey;
}

/** What a fault hook may do to one request. Return undefined to serve normally. */
export interface Fault {
  readonly status?: number;
  /** Rewrite the body (after Range is applied to the original). */
  readonly body?: (original: Buffer) => Buffer;
  /** Send this many bytes of the body, then destroy the socket. */
  readonly dropAfter?: number;
}

export interface FakeArchive {
  /** Base URL with trailing slash (holds dists/ and pool/). */
  readonly url: string;
  readonly dir: string;
  readonly key: openpgp.PrivateKey;
  /** Armored public key file (.asc). */
  readonly keyringAsc: string;
  /** Binary public key file (.gpg). */
  readonly keyringGpg: string;
  /** Every request path as requested (query stripped), in order. */
  readonly requests: string[];
  /** Range headers seen, by path. */
  readonly ranges: Map<string, string[]>;
  /** Pool path of a package ("pool/main/f/foo/foo_1.0_amd64.deb"). */
  poolPath(name: string, version: string, architecture?: string): string;
  /** Sets (or clears) the fault hook. */
  fault(hook: ((path: string, req: IncomingMessage) => Fault | undefined) | undefined): void;
  /** Reads a file of the archive. */
  read(rel: string): Promise<Buffer>;
  /** Overwrites a file of the archive (no re-signing). */
  write(rel: string, data: string | Uint8Array): Promise<void>;
  /** Removes a file of the archive. */
  remove(rel: string): Promise<void>;
  close(): Promise<void>;
}

const MTIME = 1_700_000_000;

/**
 * The smallest archive an image can be built from and run: suite bookworm with base-files (an os-release) and `app`,
 * a static program of each architecture at /usr/bin/app (staticProgramPackages).
 */
export function appArchive(architectures: readonly string[] = ['amd64']): Promise<FakeArchive> {
  return createFakeArchive({
    architectures,
    suites: [
      {
        name: 'bookworm',
        packages: [
          {
            name: 'base-files',
            version: '12.4',
            files: { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n' },
          },
          ...staticProgramPackages('app', '1.0'),
        ],
      },
    ],
  });
}

/** Returns a fresh signing key for test archives (ed25519, no passphrase). */
/**
 * A package `name` with a static program at `/usr/bin/<name>` for amd64 and for arm64, each of its architecture's
 * machine: an image built from it can run, as pare build checks. `more` adds fields and files to both.
 */
export function staticProgramPackages(
  name: string,
  version: string,
  more: Pick<FakePackage, 'fields' | 'files'> = {},
): FakePackage[] {
  return (
    [
      ['amd64', 62],
      ['arm64', 183],
    ] as const
  ).map(([architecture, machine]) => ({
    name,
    version,
    architecture,
    ...(more.fields ? { fields: more.fields } : {}),
    files: {
      [`usr/bin/${name}`]: { content: craftElf({ machine, type: 'EXEC' }), mode: 0o755 },
      ...more.files,
    },
  }));
}

export async function generateArchiveKey(name = 'pare test archive'): Promise<openpgp.PrivateKey> {
  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name, email: 'archive@test.invalid' }],
    format: 'object',
  });
  return privateKey;
}

/** Builds the archive in a temp dir and starts serving it; call `close()` in afterAll. */
export async function createFakeArchive(spec: FakeArchiveSpec): Promise<FakeArchive> {
  const dir = await mkdtemp(join(tmpdir(), 'pare-fake-archive-'));
  const key = spec.signingKey ?? (await generateArchiveKey());
  const archs = spec.architectures ?? ['amd64'];
  const put = async (rel: string, data: string | Uint8Array) => {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), data);
  };
  const poolPath = (name: string, version: string, architecture = 'amd64', component = 'main') => {
    const prefix = name.startsWith('lib') ? name.slice(0, 4) : name[0]!;
    return `pool/${component}/${prefix}/${name}/${name}_${version.replace(/^\d+:/, '')}_${architecture}.deb`;
  };

  for (const [si, suite] of spec.suites.entries()) {
    const component = suite.component ?? 'main';
    const dists = `dists/${suite.name}`;
    const sums: { path: string; data: Uint8Array }[] = [];
    for (const arch of archs) {
      const stanzas: string[] = [];
      for (const p of suite.packages) {
        const parch = p.architecture ?? arch;
        if (parch !== arch && parch !== 'all') continue;
        const deb = p.deb ?? buildDeb({ ...p, architecture: parch });
        const pool = poolPath(p.name, p.version, parch, component);
        await put(pool, deb);
        const extra = Object.entries(p.fields ?? {})
          .map(([k, v]) => `${k}: ${v}\n`)
          .join('');
        stanzas.push(
          `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: ${parch}\nMaintainer: Test <t@test.invalid>\n` +
            `Installed-Size: 1\n${extra}Filename: ${pool}\nSize: ${deb.length}\n` +
            `MD5sum: ${createHash('md5').update(deb).digest('hex')}\nSHA256: ${hex(deb)}\n` +
            `Description: test package ${p.name}\n`,
        );
      }
      const packages = Buffer.from(stanzas.join('\n'));
      const base = `${component}/binary-${arch}/Packages`;
      const files = [
        { path: base, data: packages },
        { path: `${base}.gz`, data: gzipSync(packages, { level: 9 }) },
        { path: `${base}.xz`, data: await xz.compress(packages) },
      ];
      for (const f of files) {
        await put(`${dists}/${f.path}`, f.data);
        if (suite.byHash ?? true) {
          await put(`${dists}/${component}/binary-${arch}/by-hash/SHA256/${hex(f.data)}`, f.data);
        }
        sums.push(f);
      }
    }
    const date = suite.date ?? new Date(Date.now() - 3600_000);
    const release =
      `Origin: Test\nLabel: Test\nSuite: ${suite.suite ?? (si === 0 ? 'stable' : suite.name)}\n` +
      `Codename: ${suite.codename ?? suite.name}\nDate: ${rfc2822(date)}\n` +
      (suite.validUntil ? `Valid-Until: ${rfc2822(suite.validUntil)}\n` : '') +
      `Acquire-By-Hash: ${(suite.byHash ?? true) ? 'yes' : 'no'}\n` +
      `Architectures: ${archs.join(' ')}\nComponents: ${component}\nDescription: pare test archive\n` +
      `MD5Sum:\n${sums.map((f) => ` ${createHash('md5').update(f.data).digest('hex')} ${f.data.length} ${f.path}\n`).join('')}` +
      `SHA256:\n${sums.map((f) => ` ${hex(f.data)} ${f.data.length} ${f.path}\n`).join('')}`;
    await put(`${dists}/Release`, release);
    const detached = await openpgp.sign({
      message: await openpgp.createMessage({ binary: Buffer.from(release) }),
      signingKeys: key,
      detached: true,
      format: 'armored',
    });
    await put(`${dists}/Release.gpg`, detached as string);
    if (suite.inRelease ?? true) {
      const signed = await openpgp.sign({
        message: await openpgp.createCleartextMessage({ text: release }),
        signingKeys: key,
        format: 'armored',
      });
      await put(`${dists}/InRelease`, signed as string);
    }
  }
  const keyringAsc = join(dir, 'keys', 'archive.asc');
  const keyringGpg = join(dir, 'keys', 'archive.gpg');
  await mkdir(join(dir, 'keys'), { recursive: true });
  await writeFile(keyringAsc, key.toPublic().armor());
  await writeFile(keyringGpg, key.toPublic().write());

  const requests: string[] = [];
  const ranges = new Map<string, string[]>();
  let hook: ((path: string, req: IncomingMessage) => Fault | undefined) | undefined;
  const server: Server = createServer((req, res) => {
    void serve(req, res);
  });
  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    requests.push(path);
    // The archive is also reachable as a snapshot service would lay it out: archive/debian{,-security}/<ts>/…
    const snap = /^archive\/debian(?:-security)?\/\d{8}T\d{6}Z\/(.*)$/.exec(path);
    if (snap) path = snap[1]!;
    if (req.headers.range) ranges.set(path, [...(ranges.get(path) ?? []), req.headers.range]);
    const fault = hook?.(path, req);
    if (fault?.status) {
      res.writeHead(fault.status, { 'content-type': 'text/plain' }).end('fault');
      return;
    }
    if (path.startsWith('keys/') || path.split('/').includes('..')) {
      res.writeHead(404).end();
      return;
    }
    let data: Buffer;
    try {
      data = await readFile(join(dir, path));
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    let status = 200;
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
        return;
      }
      headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
      data = data.subarray(start);
      status = 206;
    }
    if (fault?.body) data = fault.body(data);
    if (fault?.dropAfter !== undefined) {
      headers['content-length'] = String(data.length);
      res.writeHead(status, headers);
      res.write(data.subarray(0, fault.dropAfter), () => {
        setTimeout(() => res.destroy(), 10);
      });
      return;
    }
    headers['content-length'] = String(data.length);
    res.writeHead(status, headers).end(data);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/`,
    dir,
    key,
    keyringAsc,
    keyringGpg,
    requests,
    ranges,
    poolPath: (name, version, architecture) => poolPath(name, version, architecture),
    fault(h) {
      hook = h;
    },
    read: (rel) => readFile(join(dir, rel)),
    write: (rel, data) => put(rel, data),
    remove: (rel) => rm(join(dir, rel), { force: true }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Returns the spec of the smallest signed archive a Release-level test needs: one suite ("testsuite" unless `suite`
 * names another) holding package `a` 1, signed by `signingKey` so the caller's keyring trusts it.
 */
export function oneSuiteSpec(
  signingKey: openpgp.PrivateKey,
  suite: Partial<FakeSuite> = {},
): FakeArchiveSpec {
  return { signingKey, suites: [{ name: 'testsuite', packages: [{ name: 'a', version: '1' }], ...suite }] };
}

/** Returns what `use` returns after running it against a fresh fake archive, which is closed afterwards even if it throws. */
export async function withFakeArchive<T>(
  spec: FakeArchiveSpec,
  use: (archive: FakeArchive) => Promise<T>,
): Promise<T> {
  const archive = await createFakeArchive(spec);
  try {
    return await use(archive);
  } finally {
    await archive.close();
  }
}

let cacheCount = 0;
/** Returns archive options with a fresh cache under `work`, an empty env and apt dir (nothing of the host leaks in) and a 1 ms retry delay. */
export function archiveTestOptions(work: string, extra: Partial<ArchiveOptions> = {}): ArchiveOptions {
  return {
    cacheDir: join(work, `cache-${++cacheCount}`),
    env: {},
    aptDir: join(work, 'no-apt'),
    retryDelayMs: 1,
    ...extra,
  };
}

/** Returns the files left in a cache's tmp/, sorted (none after a finished or refused download). */
export async function cacheTemps(cacheDir: string): Promise<string[]> {
  try {
    return (await readdir(join(cacheDir, 'tmp'))).sort();
  } catch {
    return [];
  }
}

/** Returns a .deb (deb(5): ar of debian-binary, control.tar.gz, data.tar.xz) for a package spec. */
export function buildDeb(p: FakePackage): Uint8Array {
  const arch = p.architecture ?? 'amd64';
  const extra = Object.entries(p.fields ?? {})
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('');
  const control = `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: ${arch}\nMaintainer: Test <t@test.invalid>\n${extra}Description: test package ${p.name}\n`;
  const files = Object.entries(p.files ?? {}).map(([path, f]) => {
    const file = typeof f === 'string' ? { content: f } : f;
    const link = 'symlink' in file ? file.symlink : undefined;
    return {
      path,
      data: Buffer.from(link === undefined ? file.content : ''),
      mode: file.mode ?? 0o644,
      link,
    };
  });
  const md5sums = files
    .filter((f) => f.link === undefined)
    .map((f) => `${createHash('md5').update(f.data).digest('hex')}  ${f.path}\n`)
    .join('');
  const controlTar = tar([
    { path: './', type: 'dir', mode: 0o755 },
    { path: './control', data: Buffer.from(control), mode: 0o644 },
    { path: './md5sums', data: Buffer.from(md5sums), mode: 0o644 },
  ]);
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const dataTar = tar([
    { path: './', type: 'dir', mode: 0o755 },
    ...[...dirs].sort().map((d) => ({ path: `./${d}/`, type: 'dir' as const, mode: 0o755 })),
    ...files.map((f) =>
      f.link === undefined
        ? { path: `./${f.path}`, data: f.data, mode: f.mode }
        : { path: `./${f.path}`, type: 'symlink' as const, link: f.link, mode: 0o777 },
    ),
  ]);
  return ar([
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'control.tar.gz', data: gzipSync(controlTar) },
    { name: 'data.tar.xz', data: xz.compressSync(dataTar) },
  ]);
}

/** An ar archive of the members, as dpkg-deb writes one (for hand-made .debs). */
export function ar(members: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const m of members) {
    const header =
      m.name.padEnd(16) +
      String(MTIME).padEnd(12) +
      '0'.padEnd(6) +
      '0'.padEnd(6) +
      '100644'.padEnd(8) +
      String(m.data.length).padEnd(10) +
      '`\n';
    parts.push(Buffer.from(header, 'latin1'), m.data);
    if (m.data.length % 2 === 1) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

export interface TarMember {
  readonly path: string;
  readonly type?: 'file' | 'dir' | 'symlink';
  readonly data?: Buffer;
  readonly mode: number;
  /** A symlink's target. */
  readonly link?: string;
}

/** A ustar archive of short-named members (enough for test packages). */
export function tar(members: TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const h = Buffer.alloc(512);
    const data = m.data ?? Buffer.alloc(0);
    if (m.path.length > 99) throw new Error(`test tar: path too long: ${m.path}`);
    h.write(m.path, 0, 'utf8');
    h.write(`${m.mode.toString(8).padStart(7, '0')}\0`, 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write(`${MTIME.toString(8).padStart(11, '0')}\0`, 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write(m.type === 'dir' ? '5' : m.type === 'symlink' ? '2' : '0', 156, 'latin1');
    if (m.link !== undefined) h.write(m.link, 157, 'utf8');
    h.write('ustar\x0000', 257, 'latin1');
    h.write('root', 265, 'latin1');
    h.write('root', 297, 'latin1');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    parts.push(h, data);
    if (data.length % 512) parts.push(Buffer.alloc(512 - (data.length % 512)));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Formats a date as dak does in Release files ("Sat, 11 Jul 2026 10:16:37 UTC"). */
export function rfc2822(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}
