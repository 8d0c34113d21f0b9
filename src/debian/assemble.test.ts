import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bufferContent, dumpTree, fileEntry, symlinkEntry, Tree } from '../fstree/index.ts';
import { assembleRootfs } from './assemble.ts';
import { caCertificatesConf, caTrustEntries, pemLinkName } from './cacerts.ts';
import { Paragraph } from './control.ts';
import type { DebPackage } from './deb.ts';
import { canonicalUsrPath, mergeUsr, usrMergedDirs } from './usrmerge.ts';

/** A DebPackage made in memory: `files` maps paths to text (a file) or `-> target` (a symlink). */
function deb(
  name: string,
  files: Record<string, string>,
  fields: Record<string, string> = {},
  conffiles: string[] = [],
): DebPackage {
  const tree = Tree.from(
    Object.entries(files).map(([p, v]) => [
      p,
      v.startsWith('-> ') ? symlinkEntry(v.slice(3)) : fileEntry(bufferContent(v), { mode: 0o755 }),
    ]),
  );
  const md5sums = new Map(
    Object.entries(files)
      .filter(([, v]) => !v.startsWith('-> '))
      .map(([p]) => [p, '0'.repeat(32)]),
  );
  return {
    control: new Paragraph([
      ['Package', name],
      ['Version', '1.0'],
      ['Architecture', 'amd64'],
      ...Object.entries(fields),
    ]),
    controlFiles: new Map(),
    md5sums,
    conffiles,
    tree,
    compression: { control: 'gzip', data: 'gzip' },
  };
}

const text = async (t: Tree, p: string) => new TextDecoder().decode(await t.readFile(p));

describe('mergeUsr', () => {
  it('moves /bin, /sbin and /lib* below /usr and records what moved', async () => {
    const { tree, aliases } = await mergeUsr(
      deb('p', { '/bin/sh': 'x', '/lib64/ld.so': '-> /lib/x/ld.so', '/usr/bin/a': 'y' }).tree,
      'p',
    );
    expect([...tree.paths()].filter((p) => !tree.get(p)!.kind.startsWith('d'))).toEqual([
      '/usr/bin/a',
      '/usr/bin/sh',
      '/usr/lib64/ld.so',
    ]);
    expect(aliases).toEqual([
      { shipped: '/bin/sh', canonical: '/usr/bin/sh' },
      { shipped: '/lib64/ld.so', canonical: '/usr/lib64/ld.so' },
    ]);
    expect(canonicalUsrPath('/libx32/a')).toBe('/usr/libx32/a');
    expect(canonicalUsrPath('/binary')).toBe('/binary');
  });
  it('drops a compatibility symlink that would point at itself', async () => {
    const { tree } = await mergeUsr(
      deb('p', { '/usr/bin/ping': 'elf', '/bin/ping': '-> /usr/bin/ping' }).tree,
      'p',
    );
    expect(tree.get('/usr/bin/ping')?.kind).toBe('file');
  });
  it('refuses two different files that become one path', async () => {
    await expect(mergeUsr(deb('p', { '/usr/bin/x': 'a', '/bin/x': 'b' }).tree, 'p')).rejects.toThrow(
      expect.objectContaining({
        code: 'DEBIAN_ASSEMBLE_CONFLICT',
        message: expect.stringContaining('"/usr/bin/x" (file) and "/bin/x" (file)'),
      }),
    );
  });
  it('knows the per-architecture library links debootstrap makes', () => {
    expect(usrMergedDirs('amd64')).toEqual(['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']);
    expect(usrMergedDirs('arm64')).toEqual(['bin', 'sbin', 'lib']);
  });
});

describe('assembleRootfs', () => {
  const base = () => [
    deb('base-files', {
      '/etc/debian_version': '12.4\n',
      '/usr/lib/os-release': 'ID=debian\n',
      '/etc/os-release': '-> ../usr/lib/os-release',
    }),
    deb('bash', { '/bin/bash': 'elf', '/etc/bash.bashrc': 'rc\n' }, { Essential: 'yes' }, [
      '/etc/bash.bashrc',
    ]),
  ];

  it('builds a distroless-style root: usr links, accounts, home, tmp, dpkg status.d', async () => {
    const { tree, notes, owners } = await assembleRootfs(base(), {
      architecture: 'amd64',
      epoch: 1_700_000_000,
    });
    expect(tree.get('/bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
    expect(tree.get('/lib64')).toMatchObject({ kind: 'symlink', target: 'usr/lib64' });
    expect(tree.file('/bin/bash')).toBeDefined();
    expect(await text(tree, '/etc/passwd')).toBe(
      'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n',
    );
    expect(await text(tree, '/etc/group')).toContain('nonroot:x:65532:\n');
    expect(await text(tree, '/etc/nsswitch.conf')).toMatch(/^hosts: +files dns$/m);
    expect(tree.get('/home/nonroot')).toMatchObject({ kind: 'dir', mode: 0o700, uid: 65532, gid: 65532 });
    expect(tree.get('/tmp')).toMatchObject({ kind: 'dir', mode: 0o1777 });
    expect(tree.get('/root')).toMatchObject({ kind: 'dir', mode: 0o700 });
    expect(await text(tree, '/var/lib/dpkg/status.d/bash')).toBe(
      'Package: bash\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nEssential: yes\nConffiles:\n /etc/bash.bashrc 6b4a973742bc354da08521e4a4506af2\n',
    );
    expect(await text(tree, '/var/lib/dpkg/status.d/bash.md5sums')).toBe(
      `${'0'.repeat(32)}  bin/bash\n${'0'.repeat(32)}  etc/bash.bashrc\n`,
    );
    expect(await text(tree, '/etc/os-release')).toBe('ID=debian\n');
    expect(owners.get('/usr/bin/bash')).toEqual(['bash']);
    expect(notes).toEqual([]);
    for (const [, e] of tree) expect(e.mtime).toBe(1_700_000_000);
  });

  it('allows identical files in two packages and names both packages when they differ', async () => {
    const same = [...base(), deb('a', { '/usr/share/x': 'same' }), deb('b', { '/usr/share/x': 'same' })];
    expect((await assembleRootfs(same, { architecture: 'amd64' })).owners.get('/usr/share/x')).toEqual([
      'a',
      'b',
    ]);
    const clash = [...base(), deb('a', { '/usr/share/x': 'one' }), deb('b', { '/usr/share/x': 'two' })];
    await expect(assembleRootfs(clash, { architecture: 'amd64' })).rejects.toThrow(
      expect.objectContaining({
        code: 'DEBIAN_ASSEMBLE_CONFLICT',
        message: expect.stringContaining('packages "a" and "b" both ship "/usr/share/x"'),
      }),
    );
  });

  it('lets a package that Replaces another overwrite its file, in either order', async () => {
    for (const names of [
      ['a', 'z'],
      ['z', 'a'],
    ] as const) {
      const [old, neu] = names;
      const pkgs = [
        deb(old, { '/usr/share/x': 'old' }),
        deb(neu, { '/usr/share/x': 'new' }, { Replaces: `${old} (<< 2)` }),
      ];
      expect(await text((await assembleRootfs(pkgs, { architecture: 'arm64' })).tree, '/usr/share/x')).toBe(
        'new',
      );
    }
  });

  it('names both packages when one ships a directory where another ships a symlink', async () => {
    const pkgs = [deb('a', { '/var/run': '-> /run' }), deb('b', { '/var/run/b.pid': '1' })];
    await expect(assembleRootfs(pkgs, { architecture: 'amd64' })).rejects.toThrow(
      expect.objectContaining({
        code: 'DEBIAN_ASSEMBLE_CONFLICT',
        message: expect.stringContaining('packages "a" and "b" both ship "/var/run" (symlink and dir)'),
      }),
    );
  });

  it('notes library directories that only an ld.so.cache would make visible', async () => {
    const pkgs = [
      deb('libfoo', {
        '/etc/ld.so.conf.d/foo.conf': '/opt/foo/lib\n/usr/lib/x86_64-linux-gnu\n',
        '/opt/foo/lib/libfoo.so.1': 'elf',
      }),
    ];
    expect((await assembleRootfs(pkgs, { architecture: 'amd64' })).notes).toEqual([
      '/etc/ld.so.conf.d/foo.conf adds /opt/foo/lib (1 libraries), which ld.so only finds through an ld.so.cache; pare writes none',
    ]);
  });

  it('does not depend on the order packages are given in', async () => {
    const pkgs = [...base(), deb('a', { '/usr/share/a': '1' }), deb('ca', { '/usr/lib/x': '2' })];
    const want = await dumpTree((await assembleRootfs(pkgs, { architecture: 'amd64', epoch: 5 })).tree);
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(pkgs, { minLength: pkgs.length }), async (order) => {
        expect(
          await dumpTree((await assembleRootfs(order, { architecture: 'amd64', epoch: 5 })).tree),
        ).toEqual(want);
      }),
      { numRuns: 10 },
    );
  });
});

describe('CA trust store', () => {
  const certs = () =>
    deb('ca-certificates', {
      '/usr/share/ca-certificates/mozilla/B_Root.crt': '-----B-----\n',
      '/usr/share/ca-certificates/mozilla/A (x),y.crt': '-----A-----',
      '/usr/share/ca-certificates/mozilla/a_lower.crt': '-----a-----\n',
    });

  it('lists every certificate in byte order after the postinst header, and bundles them in that order', async () => {
    const { tree } = await assembleRootfs([certs()], { architecture: 'amd64' });
    const conf = await text(tree, '/etc/ca-certificates.conf');
    expect(conf.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mozilla/A (x),y.crt',
      'mozilla/B_Root.crt',
      'mozilla/a_lower.crt',
    ]);
    // note: "A" has no final newline; update-ca-certificates adds one.
    expect(await text(tree, '/etc/ssl/certs/ca-certificates.crt')).toBe(
      '-----A-----\n-----B-----\n-----a-----\n',
    );
    expect(tree.get('/etc/ssl/certs/A_=x=_y.pem')).toMatchObject({
      kind: 'symlink',
      target: '/usr/share/ca-certificates/mozilla/A (x),y.crt',
    });
  });

  it('honours "!" lines of an existing configuration', async () => {
    const t = certs().tree;
    const conf = caCertificatesConf(t).replace('\nmozilla/B_Root.crt\n', '\n!mozilla/B_Root.crt\n');
    const entries = await caTrustEntries(t, conf);
    expect(entries.map(([p]) => p)).toEqual([
      '/etc/ssl/certs/A_=x=_y.pem',
      '/etc/ssl/certs/a_lower.pem',
      '/etc/ssl/certs/ca-certificates.crt',
    ]);
    expect(pemLinkName('mozilla/x y.crt')).toBe('x_y.pem');
  });
});
