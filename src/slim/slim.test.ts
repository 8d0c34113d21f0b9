import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.ts';
import { bufferContent, fileEntry, symlinkEntry, type Tree, TreeBuilder } from '../fstree/index.ts';
import { readDpkgDatabase } from '../sbom/index.ts';
import { splitCommand } from './argv.ts';
import { dpkgOwners, readDpkgStatus, trimDpkg } from './dpkg.ts';
import { parseHttpProbe, resolveHttpPorts, stopSignal } from './http.ts';

describe('splitCommand', () => {
  it('splits words as a POSIX shell does', () => {
    expect(splitCommand('python3 -c "import json, ssl"')).toEqual(['python3', '-c', 'import json, ssl']);
    expect(splitCommand(`a 'b c'"d"\\ e  f`)).toEqual(['a', 'b cd e', 'f']);
    expect(splitCommand(`x "say \\"hi\\" \\$HOME" ''`)).toEqual(['x', 'say "hi" $HOME', '']);
    expect(splitCommand(`python3 -c "print([1][0])"`)).toEqual(['python3', '-c', 'print([1][0])']);
  });

  it('refuses what only a shell would interpret, and unterminated quotes (exit 2)', () => {
    for (const bad of [
      'echo $HOME',
      'a | b',
      'a; b',
      'ls *.py',
      'a > f',
      '"open',
      "'open",
      'x "$(id)"',
      '',
      '  ',
      'a \\',
    ])
      expect(() => splitCommand(bad), bad).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => splitCommand('cat /etc/*')).toThrow(UsageError);
    expect(() => splitCommand('cat /etc/*')).toThrow(/"\*" means something to a shell at column 10/);
  });
});

/** A merged-/usr root with a classic dpkg database: app (a binary and a doc), tool (gone after slicing), a config-only package. */
function fixture(): Tree {
  const b = new TreeBuilder();
  const f = (p: string, data: string) =>
    b.put(p, fileEntry(bufferContent(data), { mtime: 1000, uid: 0, gid: 0 }));
  b.mkdirp('/usr/bin');
  b.put('/bin', symlinkEntry('usr/bin'));
  f('/usr/bin/app', 'APP');
  f('/usr/share/doc/app/copyright', 'C');
  f('/usr/bin/tool', 'TOOL');
  f('/etc/os-release', 'ID=debian\n');
  f(
    '/var/lib/dpkg/status',
    'Package: app\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 2\nDescription: a tool\n more\n',
  );
  f(
    '/var/lib/dpkg/info/app:amd64.list',
    '/.\n/bin\n/bin/app\n/usr\n/usr/share/doc/app\n/usr/share/doc/app/copyright\n',
  );
  f(
    '/var/lib/dpkg/info/app:amd64.md5sums',
    `${'a'.repeat(32)}  usr/bin/app\n${'b'.repeat(32)}  usr/share/doc/app/copyright\n`,
  );
  f('/var/lib/dpkg/info/app:amd64.postinst', '#!/bin/sh\n');
  f('/var/lib/dpkg/info/tool.list', '/.\n/bin\n/bin/tool\n');
  f('/var/lib/dpkg/info/tool.md5sums', `${'c'.repeat(32)}  usr/bin/tool\n`);
  f('/var/lib/dpkg/available', '');
  return b.build();
}

describe('the classic dpkg database', () => {
  it('owners: files and symlinks by canonical path; what a package lists as a directory is not its file', async () => {
    const tree = fixture();
    const db = (await readDpkgStatus(tree))!;
    expect(db.map((p) => p.key)).toEqual(['app:amd64', 'tool']);
    const owners = dpkgOwners(tree, db);
    expect(owners.get('/usr/bin/app')).toEqual(['app']);
    expect(owners.has('/bin')).toBe(false);
    expect(owners.has('/usr/share/doc/app')).toBe(false);
  });

  it('is trimmed to the sliced tree: status, .list and .md5sums of what is left, nothing else', async () => {
    const tree = fixture();
    const db = (await readDpkgStatus(tree))!;
    const sliced = tree.filter((p) => ['/bin', '/usr/bin/app', '/etc/os-release'].includes(p));
    const { tree: out, summary } = trimDpkg(tree, sliced, db);
    expect(summary).toEqual([
      { name: 'app:amd64', filesBefore: 2, filesAfter: 1, bytesBefore: 4, bytesAfter: 3, kept: true },
      { name: 'tool', filesBefore: 1, filesAfter: 0, bytesBefore: 4, bytesAfter: 0, kept: false },
    ]);
    const text = async (p: string) => new TextDecoder().decode(await out.readFile(p));
    expect(await text('/var/lib/dpkg/status')).toBe(
      'Package: app\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nX-Pare-Sliced: yes\n\n',
    );
    expect(await text('/var/lib/dpkg/info/app:amd64.list')).toBe('/.\n/bin\n/bin/app\n/usr\n');
    expect(await text('/var/lib/dpkg/info/app:amd64.md5sums')).toBe(`${'a'.repeat(32)}  usr/bin/app\n`);
    expect(out.paths().filter((p) => p.startsWith('/var/lib/dpkg/'))).toEqual([
      '/var/lib/dpkg/info',
      '/var/lib/dpkg/info/app:amd64.list',
      '/var/lib/dpkg/info/app:amd64.md5sums',
      '/var/lib/dpkg/status',
    ]);
    expect(out.get('/var/lib/dpkg/status')?.mtime).toBe(1000);
    // What a scanner reads: only app, sliced, and every file it lists exists.
    const seen = await readDpkgDatabase(out);
    expect(seen.map((p) => [p.name, p.sliced])).toEqual([['app', true]]);
    for (const p of seen[0]!.files) expect(out.resolve(p).entry, p).toBeDefined();
  });

  it('an image without /var/lib/dpkg/status has no classic database', async () => {
    expect(await readDpkgStatus(fixture().without('/var/lib/dpkg/status'))).toBeUndefined();
  });
});

describe('--http-probe', () => {
  it('parses [PORT][/PATH]; anything else is a usage error', () => {
    expect(parseHttpProbe('8000/')).toEqual({ spec: '8000/', port: 8000, path: '/' });
    expect(parseHttpProbe('8080')).toEqual({ spec: '8080', port: 8080, path: '/' });
    expect(parseHttpProbe('/health?full=1')).toEqual({ spec: '/health?full=1', path: '/health?full=1' });
    for (const bad of ['', '0/', '65536', 'http://x/', '8000 /', ':8000', '8000/a b'])
      expect(() => parseHttpProbe(bad), bad).toThrow(/want \[PORT\]\[\/PATH\]/);
  });

  it("takes the image's only exposed TCP port when none is named, else says which to write", () => {
    const p = parseHttpProbe('/x');
    expect(resolveHttpPorts([p], { ExposedPorts: { '8000/tcp': {} } })[0]!.port).toBe(8000);
    expect(resolveHttpPorts([p], { ExposedPorts: { '53/udp': {}, '8080': {} } })[0]!.port).toBe(8080);
    expect(() => resolveHttpPorts([p], {})).toThrow(/names no port and the image exposes no TCP port/);
    expect(() => resolveHttpPorts([p], { ExposedPorts: { '80/tcp': {}, '443/tcp': {} } })).toThrow(
      /2 TCP ports \(80, 443\); write the port, e\.g\. --http-probe 80\/x/,
    );
    expect(resolveHttpPorts([parseHttpProbe('9000/')], {})[0]!.port).toBe(9000);
  });

  it("stops with the image's StopSignal by name or number", () => {
    expect(stopSignal({})).toBe('SIGTERM');
    expect(stopSignal({ StopSignal: 'SIGINT' })).toBe('SIGINT');
    expect(stopSignal({ StopSignal: 'quit' })).toBe('SIGQUIT');
    expect(stopSignal({ StopSignal: '9' })).toBe('SIGKILL');
    expect(() => stopSignal({ StopSignal: 'SIGNOPE' })).toThrow(/StopSignal "SIGNOPE" is not a signal/);
  });
});
