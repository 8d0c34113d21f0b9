import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readDeb, readDebFile } from '../../src/debian/deb.ts';
import type { Tree } from '../../src/fstree/index.ts';
import { encodeHeader, type TarHeader } from '../../src/tar/index.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';

/**
 * The .deb reader against dpkg-deb: packages built by the real `dpkg-deb --build` in every compression it offers are
 * read back and compared, member by member, with `dpkg-deb --contents`; hostile packages (crafted here, since
 * dpkg-deb refuses to build them) must be refused naming the package and the member.
 */

const peers = peersOrSkip('dpkg-deb');
const work = mkdtempSync(join(tmpdir(), 'pare-deb-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}
/** Splits bytes into small chunks, so member and header boundaries fall inside chunks. */
async function* chunked(b: Uint8Array, size = 777): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const TYPE_CHAR: Record<string, string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  hardlink: 'h',
  char: 'c',
  block: 'b',
  fifo: 'p',
};

function permString(kind: string, mode: number): string {
  const bits = 'rwxrwxrwx'.split('').map((c, i) => ((mode >> (8 - i)) & 1 ? c : '-'));
  if (mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return TYPE_CHAR[kind] + bits.join('');
}

/** Our tree as `dpkg-deb -c` lines without the date, owners as numbers. */
function ourListing(tree: Tree): string[] {
  const out: string[] = [];
  for (const [p, e] of tree) {
    if (p === '/') continue;
    const size = e.kind === 'file' ? e.content.size : 0;
    const link =
      e.kind === 'symlink' ? ` -> ${e.target}` : e.kind === 'hardlink' ? ` link to .${e.target}` : '';
    out.push(
      `${permString(e.kind, e.mode)} ${e.uid}/${e.gid} ${size} .${p}${e.kind === 'dir' ? '/' : ''}${link}`,
    );
  }
  return out.sort();
}

function ids(file: string): Map<string, string> {
  return new Map(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':'))
      .map((f) => [f[0]!, f[2]!] as [string, string]),
  );
}

function dpkgListing(deb: string): string[] {
  const text = execFileSync(peers.paths['dpkg-deb']!, ['--contents', deb], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  return text
    .split('\n')
    .filter((l) => l !== '' && !/ \.\/$/.test(l))
    .map((l) => {
      const m = /^(\S+) (\S+)\s+(\d+) \S+ \S+ (.*)$/.exec(l)!;
      // dpkg-deb prints the tar's owner names; Debian's static ids (base-passwd) are the host's ones too.
      const [u, g] = m[2]!.split('/') as [string, string];
      const owner = `${ids('/etc/passwd').get(u) ?? u}/${ids('/etc/group').get(g) ?? g}`;
      return `${m[1]} ${owner} ${m[3]} ${m[4]}`;
    })
    .sort();
}

function buildDeb(name: string, compression: string): string {
  const root = join(work, `${name}-${compression}`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Test <test@invalid>\nDescription: test package\n multi-line\n`,
  );
  writeFileSync(join(root, 'DEBIAN/conffiles'), '/etc/hello.conf\n');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'var/mail'), { recursive: true });
  chmodSync(join(root, 'var/mail'), 0o2775);
  writeFileSync(join(root, 'usr/bin/hello'), '#!/bin/sh\necho hello\n');
  chmodSync(join(root, 'usr/bin/hello'), 0o4755);
  writeFileSync(join(root, 'bin/tool'), 'x'.repeat(70_000));
  chmodSync(join(root, 'bin/tool'), 0o755);
  linkSync(join(root, 'bin/tool'), join(root, 'bin/tool2'));
  symlinkSync('hello', join(root, 'usr/bin/hi'));
  writeFileSync(join(root, 'etc/hello.conf'), 'greeting=1\n');
  const sums = execFileSync('sh', ['-c', 'find bin etc usr -type f | sort | xargs md5sum'], {
    cwd: root,
    encoding: 'utf8',
  });
  writeFileSync(
    join(root, 'DEBIAN/md5sums'),
    sums
      .split('\n')
      .filter((l) => !l.includes('etc/hello.conf'))
      .join('\n'),
  );
  const out = join(work, `${name}_${compression}.deb`);
  execFileSync(peers.paths['dpkg-deb']!, ['--root-owner-group', `-Z${compression}`, '--build', root, out], {
    stdio: 'pipe',
  });
  return out;
}

describe.skipIf(peers.skip)('readDeb', () => {
  describe.each(['gzip', 'xz', 'zstd', 'none'])(
    'when dpkg-deb built the package with -Z%s',
    (compression) => {
      it('gives the files dpkg-deb --contents lists, with control data, md5sums and conffiles', async () => {
        const path = buildDeb('hello', compression);
        const deb = await readDeb(chunked(readFileSync(path)), {
          source: path,
          expect: { name: 'hello', version: '1.0-1', architecture: 'amd64' },
        });
        expect(deb.compression.data).toBe(compression);
        expect(ourListing(deb.tree)).toEqual(dpkgListing(path));
        expect(deb.control.get('Description')).toBe('test package\nmulti-line');
        expect(deb.conffiles).toEqual(['/etc/hello.conf']);
        expect([...deb.md5sums.keys()].sort()).toEqual(['/bin/tool', '/bin/tool2', '/usr/bin/hello']);
        const hello = await deb.tree.readFile('/usr/bin/hello');
        expect(deb.md5sums.get('/usr/bin/hello')).toBe(
          execFileSync('md5sum', { input: hello, encoding: 'utf8' }).slice(0, 32),
        );
        expect([...deb.controlFiles.keys()].sort()).toEqual(['conffiles', 'control', 'md5sums']);
      });
    },
  );

  describe('when the archive is damaged or not what the index promised', () => {
    const good = () => readFileSync(buildDeb('good', 'gzip'));
    it.each([
      [
        'a truncated .deb',
        (b: Uint8Array) => b.subarray(0, b.length - 100),
        'DEBIAN_DEB_INVALID',
        /archive ends inside member|unexpected end|truncated/i,
      ],
      [
        'a missing data member',
        (b: Uint8Array) => arArchive(arMembers(b).slice(0, 2)),
        'DEBIAN_DEB_INVALID',
        /ends before data\.tar/,
      ],
      [
        'bad magic',
        (b: Uint8Array) => Buffer.concat([Buffer.from('!<arcx>\n'), b.subarray(8)]),
        'DEBIAN_DEB_INVALID',
        /bad magic/,
      ],
      [
        'format 3.0',
        (b: Uint8Array) => arArchive([['debian-binary', Buffer.from('3.0\n')], ...arMembers(b).slice(1)]),
        'DEBIAN_DEB_INVALID',
        /unsupported format version "3\.0"/,
      ],
      [
        'members out of order',
        (b: Uint8Array) => {
          const m = arMembers(b);
          return arArchive([m[0]!, m[2]!, m[1]!]);
        },
        'DEBIAN_DEB_INVALID',
        /want a control\.tar member, got "data\.tar/,
      ],
      [
        'a corrupt header',
        (b: Uint8Array) => {
          const c = Buffer.from(b);
          c.write('12x4', 8 + 48);
          return c;
        },
        'DEBIAN_DEB_INVALID',
        /malformed size/,
      ],
    ])('refuses %s', async (_what, mangle, code, message) => {
      await expect(readDeb(once(mangle(good())), { source: 'good.deb' })).rejects.toThrow(
        expect.objectContaining({ code, message: expect.stringMatching(message) }),
      );
    });
    it('refuses a package whose control file disagrees with the index', async () => {
      await expect(readDeb(once(good()), { expect: { name: 'good', version: '2.0' } })).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_DEB_INVALID',
          message: expect.stringContaining('Version "1.0-1", but the index promised "2.0"'),
        }),
      );
    });
  });

  describe('when data.tar is hostile', () => {
    const file = (path: string, body = 'x'): [TarHeader, Uint8Array] => [
      hdr(path, 'file', body.length),
      Buffer.from(body),
    ];
    it.each([
      ['a ".." member', [file('./usr/../../etc/passwd')], '../etc/passwd', /"\.\." is not allowed/],
      ['an absolute member', [file('/etc/passwd')], '/etc/passwd', /absolute/],
      [
        'a symlink out of the root',
        [[hdr('./usr/evil', 'symlink', 0, '../../../../etc'), new Uint8Array()]],
        'usr/evil',
        /points outside the root/,
      ],
      [
        'a write through a symlinked directory',
        [[hdr('./usr/lnk', 'symlink', 0, '/etc'), new Uint8Array()], file('./usr/lnk/passwd')],
        'usr/lnk/passwd',
        /through the symlinked directory/,
      ],
      [
        'a hardlink to outside',
        [[hdr('./usr/h', 'hardlink', 0, '../etc/shadow'), new Uint8Array()]],
        'usr/h',
        /hardlink target/,
      ],
    ] as const)('refuses %s, naming the package and the member', async (_what, members, member, why) => {
      const deb = craftDeb('evil', members as unknown as [TarHeader, Uint8Array][]);
      await expect(readDeb(once(deb), { source: 'evil_1_amd64.deb' })).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_DEB_UNSAFE',
          package: 'evil',
          message: expect.stringMatching(
            new RegExp(`package "evil".*${member.replace(/[.*?()[\]/]/g, '\\$&')}.*`),
          ),
        }),
      );
      await expect(readDeb(once(deb))).rejects.toThrow(
        expect.objectContaining({ message: expect.stringMatching(why) }),
      );
    });
  });
});

const debsDir = join(work, 'real');
const downloaded = (() => {
  if (peers.skip) return [];
  mkdirSync(debsDir, { recursive: true });
  try {
    execFileSync('apt-get', ['download', '-oAPT::Sandbox::User=root', 'base-files', 'coreutils', 'tzdata'], {
      cwd: debsDir,
      stdio: 'pipe',
    });
    return readdirSync(debsDir).filter((f) => f.endsWith('.deb'));
  } catch (e) {
    const reason = `cannot download real packages with the host apt: ${(e as Error).message.split('\n')[0]}`;
    // CI has apt and the mirror: there a failed download is a failure, not a skip.
    if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
    console.warn(`[skip] ${reason}`);
    return [];
  }
})();

describe.skipIf(downloaded.length === 0)('readDebFile on real Debian packages', () => {
  it.each(downloaded)('lists %s as dpkg-deb --contents does', async (f) => {
    const deb = await readDebFile(join(debsDir, f));
    expect(ourListing(deb.tree)).toEqual(dpkgListing(join(debsDir, f)));
    expect(deb.md5sums.size).toBeGreaterThan(0);
    for (const [p] of deb.md5sums) expect(deb.tree.file(p), p).toBeDefined();
  });
});

function hdr(path: string, type: TarHeader['type'], size: number, linkname = ''): TarHeader {
  return {
    path,
    type,
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: 0,
    linkname,
    devmajor: 0,
    devminor: 0,
    xattrs: {},
  };
}

function tarBytes(members: [TarHeader, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [h, body] of members) {
    parts.push(encodeHeader(h), body, new Uint8Array((512 - (body.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return Buffer.concat(parts);
}

function craftDeb(name: string, data: [TarHeader, Uint8Array][]): Uint8Array {
  const control = Buffer.from(`Package: ${name}\nVersion: 1\nArchitecture: amd64\n`);
  return arArchive([
    ['debian-binary', Buffer.from('2.0\n')],
    ['control.tar.gz', gzipSync(tarBytes([[hdr('./control', 'file', control.length), control]]))],
    ['data.tar.zst', zstdCompressSync(tarBytes(data))],
  ]);
}

function arArchive(members: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [Buffer.from('!<arch>\n')];
  for (const [name, body] of members) {
    const h = `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(body.length).padEnd(10)}\`\n`;
    parts.push(Buffer.from(h, 'latin1'), body);
    if (body.length % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

function arMembers(b: Uint8Array): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = [];
  let off = 8;
  while (off + 60 <= b.length) {
    const h = Buffer.from(b.subarray(off, off + 60)).toString('latin1');
    const size = Number(h.slice(48, 58).trim());
    out.push([h.slice(0, 16).trim().replace(/\/$/, ''), b.subarray(off + 60, off + 60 + size)]);
    off += 60 + size + (size % 2);
  }
  return out;
}
