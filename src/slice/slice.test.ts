import { describe, expect, it } from 'vitest';
import { craftElf } from '../elf/index.ts';
import { bufferContent, dumpTree, fileEntry, symlinkEntry, type Tree, TreeBuilder } from '../fstree/index.ts';
import { readDpkgDatabase } from '../sbom/index.ts';
import { formatSliceSummary, formatWhyKept, parseSliceReport, sliceReport } from './report.ts';
import { denied, localeWanted, pythonExcluded } from './rules.ts';
import { type SliceOptions, sliceTree } from './slice.ts';
import { decodeStraceString, parseStraceLog } from './strace.ts';
import { walk } from './walk.ts';

const X86_64 = 62;
const LIB = '/usr/lib/x86_64-linux-gnu';
const INTERP = '/lib64/ld-linux-x86-64.so.2';

const exe = (needed: string[], imports: string[] = []) =>
  craftElf({ machine: X86_64, type: 'DYN', interp: INTERP, needed, imports });
const lib = (soname: string, needed: string[] = [], exports: string[] = []) =>
  craftElf({ machine: X86_64, type: 'DYN', soname, needed, exports });

const md5 = (paths: string[]) => paths.map((p) => `${'0'.repeat(32)}  ${p}\n`).join('');

/**
 * A small merged-/usr root: an app linked against libfoo (a symlinked SONAME) and libc, which calls iconv_open; a
 * `#!/usr/bin/env python3` script; a shell script; docs, man pages, an unrelated package with its own configuration.
 */
function fixture(extra: (b: TreeBuilder) => void = () => {}): Tree {
  const b = new TreeBuilder();
  const f = (p: string, data: string | Uint8Array, mode = 0o644) =>
    b.put(p, fileEntry(bufferContent(data), { mode }));
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) {
    b.mkdirp(`/usr/${d}`);
    b.put(`/${d}`, symlinkEntry(`usr/${d}`));
  }
  f(`${LIB}/ld-linux-x86-64.so.2`, lib('ld-linux-x86-64.so.2'), 0o755);
  b.put('/usr/lib64/ld-linux-x86-64.so.2', symlinkEntry('../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'));
  f(`${LIB}/libc.so.6`, lib('libc.so.6', [], ['iconv_open', 'printf']));
  f(`${LIB}/libfoo.so.1.0`, lib('libfoo.so.1', ['libc.so.6']));
  b.put(`${LIB}/libfoo.so.1`, symlinkEntry('libfoo.so.1.0'));
  f(`${LIB}/libunused.so.1`, lib('libunused.so.1', ['libc.so.6']));
  f(`${LIB}/gconv/gconv-modules`, 'module UTF-16// INTERNAL UTF-16 1\n');
  f(`${LIB}/gconv/UTF-16.so`, lib('UTF-16.so', ['libc.so.6']));
  f('/usr/bin/app', exe(['libfoo.so.1', 'libc.so.6'], ['iconv_open']), 0o755);
  f('/usr/bin/env', exe(['libc.so.6']), 0o755);
  f('/usr/bin/python3.11', exe(['libc.so.6']), 0o755);
  b.put('/usr/bin/python3', symlinkEntry('python3.11'));
  f('/usr/lib/python3.11/os.py', '# os\n');
  f('/usr/lib/python3.11/test/test_os.py', '# test\n');
  f('/usr/lib/python3.11/tkinter/__init__.py', '# tk\n');
  f('/usr/lib/python3.11/cProfile.py', '#!/usr/bin/env python3\n', 0o755);
  f('/usr/bin/tool.py', '#!/usr/bin/env -S python3 -u\nprint(1)\n', 0o755);
  f('/usr/bin/dash', exe(['libc.so.6']), 0o755);
  b.put('/usr/bin/sh', symlinkEntry('dash'));
  f('/usr/bin/run.sh', '#!/bin/sh\necho hi\n', 0o755);
  f('/usr/bin/bar', exe(['libc.so.6']), 0o755);
  f('/etc/foo.conf', 'foo=1\n');
  f('/etc/bar.conf', 'bar=1\n');
  f(
    '/etc/passwd',
    'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n',
  );
  f('/etc/group', 'root:x:0:\n');
  f('/etc/nsswitch.conf', 'passwd: files\nhosts: files dns\n');
  f('/etc/hosts', '127.0.0.1 localhost\n');
  f('/usr/share/doc/libfoo1/copyright', 'Format: DEP-5\n');
  f('/usr/share/doc/libfoo1/README', 'docs\n');
  f('/usr/share/man/man1/app.1.gz', 'man');
  f('/usr/share/locale/de/LC_MESSAGES/foo.mo', 'de');
  f('/usr/share/locale/fr/LC_MESSAGES/foo.mo', 'fr');
  b.put('/home/nonroot', { kind: 'dir', mode: 0o700, uid: 65532, gid: 65532, mtime: 0 });
  b.put('/tmp', { kind: 'dir', mode: 0o1777, uid: 0, gid: 0, mtime: 0 });
  const status = (pkg: string) =>
    `Package: ${pkg}\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n`;
  f('/var/lib/dpkg/status.d/libfoo1', status('libfoo1'));
  f(
    '/var/lib/dpkg/status.d/libfoo1.md5sums',
    md5([
      // note: the package shipped /lib/…, which merged /usr made /usr/lib/…: ownership must see through /lib.
      'lib/x86_64-linux-gnu/libfoo.so.1.0',
      'etc/foo.conf',
      'usr/share/doc/libfoo1/copyright',
      'usr/share/doc/libfoo1/README',
    ]),
  );
  f('/var/lib/dpkg/status.d/bar', status('bar'));
  f('/var/lib/dpkg/status.d/bar.md5sums', md5(['usr/bin/bar', 'etc/bar.conf']));
  f('/var/lib/dpkg/status.d/libc6', status('libc6'));
  f(
    '/var/lib/dpkg/status.d/libc6.md5sums',
    md5([
      'lib/x86_64-linux-gnu/libc.so.6',
      'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      'usr/lib/x86_64-linux-gnu/gconv/UTF-16.so',
      'usr/lib/x86_64-linux-gnu/gconv/gconv-modules',
      'usr/share/locale/de/LC_MESSAGES/foo.mo',
      'usr/share/locale/fr/LC_MESSAGES/foo.mo',
    ]),
  );
  extra(b);
  return b.build();
}

const base: SliceOptions = { entrypoint: ['app'], env: ['PATH=/usr/bin:/bin'] };

describe('sliceTree', () => {
  describe('when the entrypoint is a dynamically linked program', () => {
    it('keeps its loader, libraries and every symlink on the way, with reasons', async () => {
      const r = await sliceTree(fixture(), base);
      expect(r.kept.get('/usr/bin/app')).toEqual({ why: 'root', detail: 'entrypoint "app"' });
      expect(r.kept.get(`${LIB}/ld-linux-x86-64.so.2`)).toMatchObject({
        why: 'interpreter',
        from: '/usr/bin/app',
      });
      expect(r.kept.get('/lib64')).toEqual({ why: 'base', detail: 'merged /usr' });
      expect(r.kept.get('/usr/lib64/ld-linux-x86-64.so.2')?.why).toBe('symlink-chain');
      expect(r.kept.get(`${LIB}/libfoo.so.1.0`)).toMatchObject({
        why: 'elf-needed',
        from: '/usr/bin/app',
        detail: 'libfoo.so.1',
      });
      expect(r.kept.get(`${LIB}/libfoo.so.1`)?.why).toBe('symlink-chain');
      expect(r.tree.resolve(INTERP).entry?.kind).toBe('file');
      expect(r.tree.has(`${LIB}/libunused.so.1`)).toBe(false);
    });

    it('keeps gconv modules because iconv_open binds to libc', async () => {
      const r = await sliceTree(fixture(), base);
      expect(r.kept.get(`${LIB}/gconv/UTF-16.so`)).toMatchObject({ why: 'gconv', from: '/usr/bin/app' });
      const noIconv = fixture((b) =>
        b.put('/usr/bin/app', fileEntry(bufferContent(exe(['libc.so.6'])), { mode: 0o755 })),
      );
      expect((await sliceTree(noIconv, base)).tree.has(`${LIB}/gconv`)).toBe(false);
    });

    it('keeps configuration and licenses of kept packages, drops docs, man pages, unasked locales and unreached packages', async () => {
      const r = await sliceTree(fixture(), { ...base, locales: ['de_DE.UTF-8'] });
      expect(r.kept.get('/etc/foo.conf')).toMatchObject({
        why: 'package-data',
        detail: 'configuration of libfoo1',
      });
      expect(r.kept.get('/usr/share/doc/libfoo1/copyright')?.why).toBe('license');
      for (const gone of [
        '/etc/bar.conf',
        '/usr/bin/bar',
        '/usr/share/doc/libfoo1/README',
        '/usr/share/man',
        '/usr/share/locale/fr',
      ])
        expect(r.tree.has(gone), gone).toBe(false);
      expect(r.tree.has('/usr/share/locale/de/LC_MESSAGES/foo.mo')).toBe(true);
      for (const always of [
        '/etc/passwd',
        '/etc/group',
        '/etc/nsswitch.conf',
        '/etc/hosts',
        '/tmp',
        '/home/nonroot',
      ])
        expect(r.tree.has(always), always).toBe(true);
    });

    it('rewrites the dpkg metadata: sliced marker, trimmed md5sums, dropped packages gone', async () => {
      const r = await sliceTree(fixture(), base);
      const read = async (p: string) => new TextDecoder().decode(await r.tree.readFile(p));
      expect(await read('/var/lib/dpkg/status.d/libfoo1')).toMatch(/\nX-Pare-Sliced: yes\n$/);
      expect(await read('/var/lib/dpkg/status.d/libfoo1.md5sums')).toBe(
        md5(['lib/x86_64-linux-gnu/libfoo.so.1.0', 'etc/foo.conf', 'usr/share/doc/libfoo1/copyright']),
      );
      expect(r.tree.has('/var/lib/dpkg/status.d/bar')).toBe(false);
      expect(r.tree.has('/var/lib/dpkg/status.d/bar.md5sums')).toBe(false);
      // The SBOM reader sees the marker.
      const pkgs = await readDpkgDatabase(r.tree);
      expect(pkgs.map((p) => [p.name, p.sliced])).toEqual([
        ['libc6', true],
        ['libfoo1', true],
      ]);
      expect(r.summary.get('bar')).toMatchObject({ kept: false, filesAfter: 0, filesBefore: 2 });
      expect(r.summary.get('libfoo1')).toMatchObject({
        kept: true,
        sliced: true,
        filesBefore: 4,
        filesAfter: 3,
      });
    });

    it('is deterministic', async () => {
      const a = await sliceTree(fixture(), { ...base, executables: ['tool.py'] });
      const b = await sliceTree(fixture(), { ...base, executables: ['tool.py'] });
      expect(await dumpTree(a.tree)).toEqual(await dumpTree(b.tree));
      expect(JSON.stringify(sliceReport(a))).toBe(JSON.stringify(sliceReport(b)));
    });
  });

  describe('when a root is a script', () => {
    it('keeps the #! interpreter and the env target found on PATH, and the Python stdlib minus tests and Tk', async () => {
      const r = await sliceTree(fixture(), { entrypoint: ['/usr/bin/tool.py'] });
      expect(r.kept.get('/usr/bin/env')).toMatchObject({ why: 'shebang', from: '/usr/bin/tool.py' });
      expect(r.kept.get('/usr/bin/python3.11')).toMatchObject({ why: 'shebang', detail: 'env python3' });
      expect(r.kept.get('/usr/bin/python3')?.why).toBe('symlink-chain');
      expect(r.kept.get('/usr/lib/python3.11/os.py')?.why).toBe('python-stdlib');
      expect(r.tree.has('/usr/lib/python3.11/test')).toBe(false);
      expect(r.tree.has('/usr/lib/python3.11/tkinter')).toBe(false);
      // stdlib modules with a #! line are imported, not run: no note about their interpreter.
      expect(r.notes.filter((n) => n.includes('cProfile'))).toEqual([]);
    });

    it('refuses a root script run by a shell unless shell: true', async () => {
      await expect(sliceTree(fixture(), { entrypoint: ['/usr/bin/run.sh'] })).rejects.toThrow(
        expect.objectContaining({
          code: 'SLICE_SHELL_REQUIRED',
          message: expect.stringContaining('shell: true'),
        }),
      );
      const r = await sliceTree(fixture(), { entrypoint: ['/usr/bin/run.sh'], shell: true });
      expect(r.tree.file('/bin/sh')).toBeDefined();
      expect(r.kept.get('/usr/bin/sh')?.why).toBe('symlink-chain');
    });

    it('keeps /bin/sh → dash and its closure with shell: true even when nothing runs it, and the merged-/usr links always', async () => {
      // note: before, shell: true only allowed shells; an image whose entrypoint is not a script got no /bin/sh.
      const r = await sliceTree(fixture(), { entrypoint: ['/usr/bin/bar'], shell: true });
      expect(r.tree.get('/usr/bin/sh')).toMatchObject({ kind: 'symlink', target: 'dash' });
      expect(r.kept.get('/usr/bin/dash')).toEqual({ why: 'root', detail: 'shell: true' });
      expect(r.tree.file(`${LIB}/libc.so.6`)).toBeDefined();
      expect(r.roots).toContainEqual({
        kind: 'executable',
        spec: '/bin/sh (shell: true)',
        paths: ['/usr/bin/dash'],
      });
      const none = await sliceTree(fixture(), { entrypoint: ['/usr/bin/bar'] });
      expect(none.tree.get('/usr/bin/sh')).toBeUndefined();
      expect(none.tree.get('/usr/bin/dash')).toBeUndefined();
      for (const d of ['bin', 'lib', 'lib64', 'sbin']) {
        expect(none.tree.get(`/${d}`)).toMatchObject({ kind: 'symlink', target: `usr/${d}` });
        expect(none.tree.get(`/usr/${d}`)?.kind).toBe('dir');
      }
    });
  });

  describe('when the roots are wrong', () => {
    it.each([
      [{ entrypoint: ['nope'] }, 'SLICE_ROOT_NOT_FOUND', 'not found on PATH'],
      [{ executables: ['/usr/bin/missing'] }, 'SLICE_ROOT_NOT_FOUND', '"/usr/bin/missing"'],
      [{ entrypoint: ['app'], keep: ['/opt/**'] }, 'SLICE_ROOT_NOT_FOUND', 'matches nothing'],
      [{ files: ['/usr/bin/ap?'] }, 'SLICE_ROOT_NOT_FOUND', 'file "/usr/bin/ap?" is not in the tree'],
      [{}, 'SLICE_OPTIONS_INVALID', 'no roots'],
    ] as const)('throws %j → %s', async (o, code, msg) => {
      await expect(sliceTree(fixture(), o)).rejects.toThrow(
        expect.objectContaining({ code, message: expect.stringContaining(msg) }),
      );
    });
  });

  describe('when files: are given', () => {
    it('keeps exactly those paths and their ELF closure; a directory keeps only itself', async () => {
      const r = await sliceTree(fixture(), { files: ['/usr/bin/app', '/usr/lib/python3.11'] });
      expect(r.kept.get('/usr/bin/app')).toEqual({ why: 'root', detail: 'files:' });
      expect(r.kept.get(`${LIB}/libfoo.so.1.0`)?.why).toBe('elf-needed');
      expect(r.tree.has(`${LIB}/libc.so.6`)).toBe(true);
      expect(r.tree.has('/usr/lib/python3.11')).toBe(true);
      expect(r.tree.has('/usr/lib/python3.11/os.py')).toBe(false);
      expect(r.tree.has('/usr/bin/bar')).toBe(false);
      expect(r.roots).toEqual([
        { kind: 'files', spec: 'files:', paths: ['/usr/bin/app', '/usr/lib/python3.11'] },
      ]);
    });
  });

  describe('when drop: globs are given', () => {
    it('removes what the closure wants, records why it was wanted, and why-kept says so', async () => {
      const r = await sliceTree(fixture(), { ...base, drop: [`${LIB}/gconv/**`, `${LIB}/libfoo.so.1.0`] });
      expect(r.tree.has(`${LIB}/gconv/UTF-16.so`)).toBe(false);
      expect(r.tree.has(`${LIB}/gconv`)).toBe(false);
      expect(r.tree.has(`${LIB}/libfoo.so.1.0`)).toBe(false);
      expect(r.tree.has(`${LIB}/libc.so.6`)).toBe(true);
      expect(r.dropped.get(`${LIB}/gconv/UTF-16.so`)).toEqual({
        glob: `${LIB}/gconv/**`,
        wanted: { why: 'gconv', from: '/usr/bin/app', detail: 'iconv_open' },
      });
      expect(r.dropped.get(`${LIB}/libfoo.so.1.0`)?.wanted).toMatchObject({ from: '/usr/bin/app' });
      expect(r.notes).toContain(
        `slice.drop "${LIB}/libfoo.so.1.0" removed ${LIB}/libfoo.so.1.0 needed by /usr/bin/app`,
      );
      expect(r.notes).toContain(
        `slice.drop "${LIB}/gconv/**" removed 3 paths (${LIB}/gconv, …) needed by /usr/bin/app`,
      );
      const report = parseSliceReport(JSON.stringify(sliceReport(r)));
      for (const source of [r, report])
        expect(formatWhyKept(source, `${LIB}/gconv/UTF-16.so`)).toBe(
          `${LIB}/gconv/UTF-16.so: dropped by slice.drop "${LIB}/gconv/**"\n  ← wanted as gconv module (iconv_open) for /usr/bin/app (iconv_open)\n    ← root (entrypoint "app")\n`,
        );
    });

    it('wins over a keep glob, and leaves reports of slices without drops as they were', async () => {
      const r = await sliceTree(fixture(), {
        ...base,
        keep: ['/usr/share/doc/libfoo1/**'],
        drop: ['/usr/share/doc/libfoo1/README'],
      });
      expect(r.tree.has('/usr/share/doc/libfoo1/README')).toBe(false);
      expect(r.dropped.get('/usr/share/doc/libfoo1/README')?.wanted.why).toBe('keep-glob');
      expect('dropped' in sliceReport(await sliceTree(fixture(), base))).toBe(false);
    });

    it.each([
      [{ ...base, drop: ['/opt/**'] }, 'SLICE_ROOT_NOT_FOUND', 'drop glob "/opt/**" matches nothing'],
      [
        { ...base, drop: ['/usr/bin/app'] },
        'SLICE_OPTIONS_INVALID',
        '"app" is a root and drop glob "/usr/bin/app" removes it',
      ],
      [
        { files: ['/usr/bin/bar'], drop: ['/usr/bin/*'] },
        'SLICE_OPTIONS_INVALID',
        'removes "/usr/bin/bar", one of the files given',
      ],
      [{ ...base, drop: ['/usr/[bin'] }, 'SLICE_ROOT_NOT_FOUND', 'matches nothing'],
    ] as const)('refuses %j', async (o, code, msg) => {
      await expect(sliceTree(fixture(), o)).rejects.toThrow(
        expect.objectContaining({ code, message: expect.stringContaining(msg) }),
      );
    });
  });

  describe('when keep globs and probes add roots', () => {
    it('keeps matched subtrees and what a probe touched, with their packages', async () => {
      const r = await sliceTree(fixture(), {
        ...base,
        keep: ['/usr/share/doc/libfoo1/**'],
        probe: ['bar  --version'],
        prober: {
          trace: async (_t, cmds) => cmds.map(() => ['/usr/bin/bar', '/bin', '/nonexistent', '/proc/self']),
        },
      });
      expect(r.kept.get('/usr/share/doc/libfoo1/README')).toMatchObject({ why: 'keep-glob' });
      expect(r.kept.get('/usr/bin/bar')).toMatchObject({ why: 'probe', detail: 'bar --version' });
      expect(r.kept.get('/etc/bar.conf')?.why).toBe('package-data');
      expect(r.roots.find((x) => x.kind === 'probe')?.paths).toEqual(['/usr/bin', '/usr/bin/bar']);
    });
  });

  it('owners naming a package status.d does not record (a classic dpkg status, pare slim): its configuration and license are kept, no metadata', async () => {
    const tree = fixture((b) => {
      b.put('/usr/bin/tool', fileEntry(bufferContent(exe(['libc.so.6'])), { mode: 0o755 }));
      b.put('/etc/tool.conf', fileEntry(bufferContent('t=1\n')));
      b.put('/usr/share/doc/tool/copyright', fileEntry(bufferContent('C\n')));
    });
    const owners = new Map([
      ['/usr/bin/tool', ['tool']],
      ['/etc/tool.conf', ['tool']],
      ['/usr/share/doc/tool/copyright', ['tool']],
    ]);
    const r = await sliceTree(tree, { ...base, entrypoint: ['tool'], owners });
    expect(r.kept.get('/etc/tool.conf')).toMatchObject({
      why: 'package-data',
      detail: 'configuration of tool',
    });
    expect(r.kept.get('/usr/share/doc/tool/copyright')).toMatchObject({ why: 'license', detail: 'tool' });
    expect(r.summary.has('tool')).toBe(false);
  });
});

describe('formatWhyKept', () => {
  it('shows the chain from the root to a library reached through a symlink', async () => {
    const r = await sliceTree(fixture(), base);
    expect(formatWhyKept(r, '/lib/x86_64-linux-gnu/libfoo.so.1.0')).toBe(
      [
        '/usr/lib/x86_64-linux-gnu/libfoo.so.1.0',
        '  ← library needed by /usr/bin/app (libfoo.so.1)',
        '    ← root (entrypoint "app")',
        '',
      ].join('\n'),
    );
    expect(formatWhyKept(r, '/usr/bin/bar')).toBe('/usr/bin/bar: not kept (nothing in the image needs it)\n');
  });

  it('reads the same from a stored report', async () => {
    const r = await sliceTree(fixture(), base);
    const stored = parseSliceReport(JSON.stringify(sliceReport(r)), 'slice-report.json');
    expect(formatWhyKept(stored, '/etc/foo.conf')).toBe(formatWhyKept(r, '/etc/foo.conf'));
    expect(formatSliceSummary(stored)).toBe(formatSliceSummary(r));
    expect(formatSliceSummary(r)).toMatch(/^bar\s+2 → 0\s+.*dropped$/m);
  });

  it.each([
    ['{', 'not JSON'],
    ['{"version":"x"}', 'want "version"'],
    [
      '{"version":"pare.slice/v1","kept":{"/a":{"why":"magic"}},"roots":[],"packages":{},"notes":[]}',
      'bad entry for "/a"',
    ],
  ])('rejects a bad report %s', (text, msg) => {
    expect(() => parseSliceReport(text, 'r.json')).toThrow(
      expect.objectContaining({ code: 'SLICE_REPORT_INVALID', message: expect.stringContaining(msg) }),
    );
  });
});

describe('rules', () => {
  it.each([
    ['/usr/bin/dash', false, 'a shell'],
    ['/usr/bin/dash', true, undefined],
    ['/usr/bin/dpkg-query', false, 'package-manager'],
    ['/usr/share/doc/x/README', false, 'documentation'],
    ['/usr/share/doc/x/copyright', false, undefined],
    ['/usr/lib/python3/dist-packages/__pycache__/a.pyc', false, 'bytecode'],
    ['/usr/share/locale/fr/LC_MESSAGES/a.mo', false, 'locale'],
    ['/usr/lib/locale/C.utf8/LC_CTYPE', false, undefined],
  ])('denied(%s, shell=%s) → %s', (p, shell, why) => {
    const got = denied(p, { shell, locales: [] });
    if (why === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(why);
  });

  it.each([
    ['de', ['de_DE.UTF-8'], true],
    ['de_DE.utf8', ['de_DE.UTF-8'], true],
    ['de_AT', ['de_DE.UTF-8'], false],
    ['pt_BR', ['pt'], true],
    ['pt', ['pt_BR'], true],
    ['fr', [], false],
    ['C.utf8', [], true],
  ] as const)('localeWanted(%s, %j) → %s', (name, locales, want) => {
    expect(localeWanted(name, locales)).toBe(want);
  });

  it.each([
    ['test/test_os.py', true],
    ['unittest/test/test_case.py', true],
    ['json/__init__.py', false],
    ['lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so', false],
    ['lib-dynload/_nis.cpython-311-x86_64-linux-gnu.so', true],
    ['encodings/__pycache__/utf_8.cpython-311.pyc', true],
  ])('pythonExcluded(%s) → %s', (rel, want) => {
    expect(pythonExcluded(rel)).toBe(want);
  });
});

describe('walk', () => {
  it('returns every symlink met, the last one too', () => {
    const t = fixture();
    expect(walk(t, INTERP)).toMatchObject({
      path: `${LIB}/ld-linux-x86-64.so.2`,
      links: ['/lib64', '/usr/lib64/ld-linux-x86-64.so.2'],
    });
    expect(walk(t, '/bin/python3', { follow: false }).path).toBe('/usr/bin/python3');
    expect(walk(t, '/bin/nope/x').entry).toBeUndefined();
  });

  it('throws on a symlink loop', () => {
    const t = fixture((b) => {
      b.put('/loop/a', symlinkEntry('b'));
      b.put('/loop/b', symlinkEntry('a'));
    });
    expect(() => walk(t, '/loop/a')).toThrow(expect.objectContaining({ code: 'TREE_SYMLINK_LOOP' }));
  });
});

describe('parseStraceLog', () => {
  // note: bwrap (pid 100) touches host paths before the command's exec; the command (pid 102) searches PATH
  // (a failed execve), then runs; a thread (103) is cloned with the call split by another process's line.
  const log = [
    '100 execve("/usr/bin/bwrap", ["bwrap", "--", "python3"], 0x7ffd /* 3 vars */) = 0',
    '100 openat(AT_FDCWD</root>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>',
    '100 clone(child_stack=NULL, flags=CLONE_NEWNS|SIGCHLD) = 101',
    '101 mount("/tmp/root/usr", "/newroot/usr", NULL, MS_BIND, NULL) = 0',
    '101 clone(child_stack=NULL, flags=SIGCHLD) = 102',
    '102 execve("/usr/local/bin/python3", ["python3"], 0x5555 /* 2 vars */) = -1 ENOENT (No such file or directory)',
    '102 execve("/usr/bin/python3", ["python3"], 0x5555 /* 2 vars */) = 0',
    '102 openat(AT_FDCWD</app>, "rel/data.txt", O_RDONLY) = 3</app/rel/data.txt>',
    '102 newfstatat(3</usr/lib/python3.11>, "os.py", {st_mode=S_IFREG|0644, ...}, 0) = 0',
    '102 openat(AT_FDCWD</app>, "/usr/lib/caf\\303\\251.py", O_RDONLY) = 4',
    '102 clone3({flags=CLONE_VM|CLONE_THREAD, ...} <unfinished ...>',
    '101 wait4(-1,  <unfinished ...>',
    '103 openat(AT_FDCWD</app>, "/usr/lib/x86_64-linux-gnu/libssl.so.3", O_RDONLY|O_CLOEXEC) = 5',
    '102 <... clone3 resumed> => {parent_tid=[103]}, 88) = 103',
    '102 access("/etc/missing", R_OK) = -1 ENOENT (No such file or directory)',
    '102 readlink("/proc/self/exe", "/usr/bin/python3.11", 4096) = 19',
    '102 newfstatat(5</usr/lib/x86_64-linux-gnu/libssl.so.3>, "", {st_mode=S_IFREG|0644, ...}, AT_EMPTY_PATH) = 0',
    '102 +++ exited with 0 +++',
  ].join('\n');

  it("returns the paths the command and its threads touched, not bwrap's", () => {
    expect(parseStraceLog(log, { cwd: '/app' })).toEqual([
      '/app/rel/data.txt',
      '/usr/bin/python3',
      '/usr/lib/caf\u00e9.py',
      '/usr/lib/python3.11/os.py',
      '/usr/lib/x86_64-linux-gnu/libssl.so.3',
    ]);
  });

  it("follows children cloned inside the sandbox's pid namespace by the host pid strace translates", () => {
    // note: a server thread (host pid 26569, pid 3 in the sandbox) that opens the file it serves; before
    // --pidns-translation was read, clone's "= 3" named no process of the log and the thread's paths were lost.
    const ns = [
      '100 execve("/usr/bin/bwrap", ["bwrap", "--", "python3"], 0x7ffd /* 3 vars */) = 0',
      '100 clone(child_stack=NULL, flags=CLONE_NEWPID|SIGCHLD) = 101',
      "101 clone(child_stack=NULL, flags=SIGCHLD) = 2 /* 102 in strace's PID NS */",
      '102 execve("/usr/bin/python3", ["python3"], 0x5555 /* 2 vars */) = 0',
      "102 clone(child_stack=0x7f79, flags=CLONE_VM|CLONE_THREAD, parent_tid=[3]) = 3 /* 26569 in strace's PID NS */",
      '26569 openat(AT_FDCWD</srv/site>, "/srv/site/index.html", O_RDONLY|O_CLOEXEC) = 5</srv/site/index.html>',
    ].join('\n');
    expect(parseStraceLog(ns, { cwd: '/srv/site' })).toEqual(['/srv/site/index.html', '/usr/bin/python3']);
  });

  it('decodes strace string escapes as UTF-8 bytes', () => {
    expect(decodeStraceString('a\\"b\\\\c\\n\\303\\251\\x41')).toBe('a"b\\c\né\u0041');
  });
});
