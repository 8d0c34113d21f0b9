import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleRootfs } from '../../src/debian/assemble.ts';
import { Paragraph } from '../../src/debian/control.ts';
import type { DebPackage } from '../../src/debian/deb.ts';
import { readHostDir, TreeBuilder } from '../../src/fstree/index.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';

/**
 * Assembly against the real tools whose work it replaces: the CA bundle must be byte-identical to what the real
 * `update-ca-certificates` writes for the same certificates and configuration, and the claim that no ld.so.cache is
 * needed is checked against the dynamic loader's own account of its built-in search path.
 */

const work = mkdtempSync(join(tmpdir(), 'pare-assemble-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CERTS = '/usr/share/ca-certificates';
const ca = peersOrSkip('update-ca-certificates', 'openssl');

describe.skipIf(ca.skip || !existsSync(`${CERTS}/mozilla`))('the CA bundle', () => {
  it('is byte-identical to the one update-ca-certificates builds from the same certificates', async () => {
    // note: the host's own bundle cannot serve as the reference: its ca-certificates.conf carries upgrade history
    // and local certificates. So run the real script on a sysroot holding exactly the image's inputs.
    const certs = await readHostDir(`${CERTS}/mozilla`);
    const b = new TreeBuilder();
    for (const [p, e] of certs) if (p !== '/') b.put(`${CERTS}/mozilla${p}`, e);
    const pkg: DebPackage = {
      control: new Paragraph([
        ['Package', 'ca-certificates'],
        ['Version', '1'],
        ['Architecture', 'all'],
      ]),
      controlFiles: new Map(),
      md5sums: new Map(),
      conffiles: [],
      tree: b.build(),
      compression: { control: 'xz', data: 'xz' },
    };
    const { tree } = await assembleRootfs([pkg], { architecture: 'amd64' });
    const ours = await tree.readFile('/etc/ssl/certs/ca-certificates.crt');

    const root = join(work, 'sysroot');
    mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
    mkdirSync(join(root, 'usr/share/ca-certificates'), { recursive: true });
    cpSync(`${CERTS}/mozilla`, join(root, 'usr/share/ca-certificates/mozilla'), { recursive: true });
    writeFileSync(join(root, 'etc/ca-certificates.conf'), await tree.readFile('/etc/ca-certificates.conf'));
    runPeer(ca.paths['update-ca-certificates']!, ['--sysroot', root], {
      env: { ...process.env, LC_ALL: 'C' },
    });
    const theirs = readFileSync(join(root, 'etc/ssl/certs/ca-certificates.crt'));
    expect(ours.length).toBe(theirs.length);
    expect(Buffer.from(ours).equals(theirs)).toBe(true);
    // Every certificate got its .pem link, named as the script names them.
    const links = tree.children('/etc/ssl/certs').filter((p) => p.endsWith('.pem'));
    const real = execFileSync('find', ['.', '-name', '*.pem', '-type', 'l'], {
      cwd: join(root, 'etc/ssl/certs'),
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map((l) => `/etc/ssl/certs/${l.slice(2)}`)
      .sort();
    expect([...links].sort()).toEqual(real);
  });
});

const dpkg = peersOrSkip('dpkg');
const LOADERS: Record<string, [string, string]> = {
  amd64: ['/lib64/ld-linux-x86-64.so.2', 'x86_64-linux-gnu'],
  arm64: ['/lib/ld-linux-aarch64.so.1', 'aarch64-linux-gnu'],
};

describe.skipIf(dpkg.skip)('the dynamic loader without /etc/ld.so.cache', () => {
  it('searches the multiarch directories built in, so Debian libraries are found with no cache', () => {
    const arch = runPeer(dpkg.paths.dpkg!, ['--print-architecture']).trim();
    const known = LOADERS[arch];
    expect(known, `no loader known for ${arch}`).toBeDefined();
    const [loader, triplet] = known!;
    const help = runPeer(loader, ['--help']);
    const system = [...help.matchAll(/^\s+(\S+) \(system search path\)$/gm)].map((m) => m[1]);
    expect(system).toEqual(
      expect.arrayContaining([`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib']),
    );
    // note: with --inhibit-cache the loader ignores ld.so.cache, as in an image that has none; libc must still load.
    const out = runPeer(loader, ['--inhibit-cache', '--list', '/usr/bin/true']);
    expect(out).toMatch(new RegExp(`libc\\.so\\.6 => /(usr/)?lib/${triplet}/libc\\.so\\.6`));
  });
});
