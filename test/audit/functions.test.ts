/**
 * `pare audit --functions`: per library, the functions imported from it and by which files; per package; static
 * binaries from their symbol table. A root of crafted programs and a crafted library (so the expected answer is
 * known exactly), and a real `gcc -static` program.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { craftElf } from '../../src/elf/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('pare audit --functions', () => {
  const root = tempDir('pare-functions-');
  const put = (path: string, data: Uint8Array | string, mode = 0o644) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), data, { mode });
  };
  const program = (imports: string[]) =>
    craftElf({ machine: 62, interp: '/lib64/ld-linux-x86-64.so.2', needed: ['libpare.so.1'], imports });
  put('/lib64/ld-linux-x86-64.so.2', craftElf({ machine: 62, type: 'DYN', soname: 'ld-linux-x86-64.so.2' }));
  put(
    '/usr/lib/libpare.so.1',
    craftElf({
      machine: 62,
      type: 'DYN',
      soname: 'libpare.so.1',
      exports: ['pare_open', 'pare_read', 'pare_cve'],
    }),
  );
  put('/usr/bin/reader', program(['pare_open', 'pare_read']), 0o755);
  put('/usr/bin/opener', program(['pare_open', 'pare_missing']), 0o755);
  put(
    '/var/lib/dpkg/status',
    'Package: libpare1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.2-3\n\n' +
      'Package: tools\nStatus: install ok installed\nArchitecture: amd64\nVersion: 9\n',
  );
  put('/var/lib/dpkg/info/libpare1.list', '/usr/lib/libpare.so.1\n');
  put('/var/lib/dpkg/info/tools.list', '/usr/bin/reader\n/usr/bin/opener\n');

  it('lists each library function with its users, per package, and the unresolved ones', async () => {
    const r = await pare(['audit', join(root, 'usr/bin'), '--root', root, '--functions', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.schema).toBe('pare.audit.functions/v1');
    expect(report.libraries).toEqual([
      {
        library: '/usr/lib/libpare.so.1',
        package: 'libpare1',
        packageVersion: '1.2-3',
        users: ['/usr/bin/opener', '/usr/bin/reader'],
        // pare_cve is exported but nobody imports it: it is not listed.
        functions: [
          { name: 'pare_open', version: null, users: ['/usr/bin/opener', '/usr/bin/reader'] },
          { name: 'pare_read', version: null, users: ['/usr/bin/reader'] },
        ],
      },
    ]);
    expect(report.unresolved).toEqual([{ name: 'pare_missing', version: null, users: ['/usr/bin/opener'] }]);
    expect(report.packages).toEqual([
      {
        package: 'tools',
        version: '9',
        files: ['/usr/bin/opener', '/usr/bin/reader'],
        imports: [{ library: '/usr/lib/libpare.so.1', functions: ['pare_open', 'pare_read'] }],
      },
    ]);

    const t = await pare(['audit', join(root, 'usr/bin'), '--root', root, '--functions']);
    expect(t.stdout).toContain(
      'LIBRARY /usr/lib/libpare.so.1 (libpare1 1.2-3): 2 functions used by 2 files\n',
    );
    expect(t.stdout).toMatch(/\n {2}pare_open +\/usr\/bin\/opener, \/usr\/bin\/reader\n/);
    expect(t.stdout).toContain('tools 9: 2 files, 2 imported functions from /usr/lib/libpare.so.1');

    const both = await pare(['audit', root, '--functions', '--uses', 'x']);
    expect(both.code).toBe(2);
  });

  it('lists the functions a static binary linked in, from its symbol table', async (ctx) => {
    const p = peersOrSkip('gcc');
    if (p.skip) return ctx.skip(p.reason);
    const dir = tempDir('pare-functions-static-');
    writeFileSync(join(dir, 'm.c'), '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n');
    execFileSync(p.paths.gcc!, ['-static', '-O1', '-o', join(dir, 'hello'), join(dir, 'm.c')]);
    const r = await pare(['audit', join(dir, 'hello'), '--functions', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.libraries).toEqual([]);
    expect(report.static).toHaveLength(1);
    expect(report.static[0].path).toBe(join(dir, 'hello'));
    expect(report.static[0].functions).toEqual(expect.arrayContaining(['main', 'puts']));
  });
});
