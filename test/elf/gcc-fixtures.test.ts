/**
 * gcc-built fixtures, one flag flipping one fact each, are classified right — and the same as checksec classifies them.
 * Built in a temporary directory by the test (no checked-in binaries).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AuditFile, auditRoot, symbolUsers } from '../../src/audit/index.ts';
import { hostRootFs } from '../../src/elf/index.ts';
import { asChecksec } from '../helpers/checksec.ts';
import { peersOrSkip } from '../helpers/peers.ts';

const run = promisify(execFile);
const peers = peersOrSkip('gcc', 'checksec');

const PROGRAM = `
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <alloca.h>
extern int fix_fn(int);
#ifdef ALLOCA_ONLY
int big(int n) { char *p = alloca(n); memset(p, 1, n); return p[n - 1]; }
#else
int big(int n) { char *p = alloca(n); memset(p, 1, n); volatile char frame[70000]; frame[0] = p[0]; return frame[0]; }
#endif
int main(int argc, char **argv) {
  char buf[64];
  strcpy(buf, argc > 1 ? argv[1] : "x");
  memcpy(buf + 1, argv[0], strlen(argv[0]) % 8);
  printf("%s %d\\n", buf, big(argc * 100));
  return USE_LIB;
}
`;
const HARD = [
  '-O2',
  '-fstack-protector-strong',
  '-D_FORTIFY_SOURCE=2',
  '-fPIE',
  '-pie',
  '-Wl,-z,relro,-z,now',
  '-fcf-protection=full',
];

type Expect = Partial<{
  relro: string;
  canary: boolean;
  nx: boolean;
  pie: string;
  linkage: string;
  rpath: string | null;
  runpath: string | null;
  stripped: boolean;
  fortify: boolean;
  ibt: boolean;
  shstk: boolean;
  stackClash: string;
}>;

const CASES: [name: string, flags: string[], expected: Expect][] = [
  // note: Debian 12's crt*.o carry no CET property, so -fcf-protection alone yields none; -z ibt/-z shstk force it.
  [
    'hardened',
    HARD,
    {
      relro: 'full',
      canary: true,
      nx: true,
      pie: 'pie',
      linkage: 'dynamic',
      fortify: true,
      ibt: false,
      stripped: false,
    },
  ],
  ['cet', [...HARD, '-Wl,-z,ibt,-z,shstk'], { ibt: true, shstk: true }],
  ['no-pie', [...HARD, '-fno-PIE', '-no-pie'], { pie: 'no', linkage: 'dynamic' }],
  ['static', [...HARD, '-static'], { pie: 'no', linkage: 'static' }],
  ['static-pie', [...HARD, '-static-pie'], { pie: 'pie', linkage: 'static-pie' }],
  ['norelro', [...HARD, '-Wl,-z,norelro'], { relro: 'none' }],
  ['lazy', [...HARD, '-Wl,-z,lazy'], { relro: 'partial' }],
  ['no-canary', [...HARD, '-fno-stack-protector'], { canary: false }],
  ['fortify3', ['-O2', '-D_FORTIFY_SOURCE=3', '-fno-stack-protector'], { fortify: true }],
  ['no-fortify', ['-O0', '-U_FORTIFY_SOURCE'], { fortify: false }],
  ['no-cet', [...HARD, '-fcf-protection=none'], { ibt: false, shstk: false }],
  ['execstack', [...HARD, '-Wl,-z,execstack'], { nx: false }],
  ['rpath', [...HARD, '-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib'], { rpath: '$ORIGIN/lib', runpath: null }],
  [
    'runpath',
    [...HARD, '-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib'],
    { runpath: '$ORIGIN/lib', rpath: null },
  ],
  ['stripped', [...HARD, '-s'], { stripped: true }],
  ['stack-clash', [...HARD, '-fstack-clash-protection'], { stackClash: 'yes' }],
  // only the alloca loop probes, at [rsp+0xff8] (GCC 12: `or QWORD PTR [rsp+0xff8],0x0`, as in samba-libs)
  ['stack-clash-alloca', [...HARD, '-fstack-clash-protection', '-DALLOCA_ONLY'], { stackClash: 'yes' }],
];

describe.skipIf(peers.skip)('pare audit of gcc fixtures', () => {
  let dir: string;
  let files: Map<string, AuditFile>;
  let report: Awaited<ReturnType<typeof auditRoot>>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pare-gcc-'));
    mkdirSync(join(dir, 'bin/lib'), { recursive: true });
    writeFileSync(join(dir, 'p.c'), PROGRAM);
    writeFileSync(join(dir, 'fix.c'), 'int fix_fn(int x) { return x + 1; }\n');
    execFileSync(peers.paths.gcc!, [
      '-shared',
      '-fPIC',
      '-O2',
      '-o',
      join(dir, 'bin/lib/libfix.so'),
      join(dir, 'fix.c'),
    ]);
    await Promise.all(
      CASES.map(([name, flags]) => {
        const withLib = name === 'rpath' || name === 'runpath';
        const args = [
          ...flags,
          `-DUSE_LIB=${withLib ? 'fix_fn(0)' : '0'}`,
          '-o',
          join(dir, 'bin', name),
          join(dir, 'p.c'),
        ];
        if (withLib) args.push(`-L${join(dir, 'bin/lib')}`, '-lfix');
        return run(peers.paths.gcc!, args);
      }),
    );
    report = await auditRoot(hostRootFs('/'), { paths: [join(dir, 'bin')], packages: false });
    files = new Map(report.files.map((f) => [f.path.slice(join(dir, 'bin').length + 1), f]));
  }, 300_000);

  it.each(CASES)('classifies %s', (name, _flags, expected) => {
    const h = files.get(name)!.hardening;
    const got: Record<string, unknown> = {};
    for (const k of Object.keys(expected)) got[k] = h[k as keyof typeof h].value;
    expect(got).toEqual(expected);
  });

  it('gives every fixture the same columns checksec gives it', async () => {
    const diffs: string[] = [];
    for (const [name, f] of files) {
      if (name.startsWith('lib/')) continue;
      const { stdout } = await run(peers.paths.checksec!, ['--output=json', `--file=${f.path}`]);
      const c = (JSON.parse(stdout) as Record<string, Record<string, string>>)[f.path]!;
      for (const [k, v] of Object.entries(asChecksec(f)))
        if (c[k] !== v) diffs.push(`${name}: ${k}: checksec=${c[k]} pare=${v}`);
    }
    expect(diffs).toEqual([]);
  });

  it('resolves $ORIGIN in RPATH and RUNPATH to the fixture library and binds fix_fn to it', () => {
    for (const name of ['rpath', 'runpath']) {
      const f = files.get(name)!;
      const lib = f.libraries!.find((l) => l.name === 'libfix.so')!;
      expect(lib).toMatchObject({ path: join(dir, 'bin/lib/libfix.so'), foundBy: name });
      expect(f.imports!.find((i) => i.name === 'fix_fn')).toMatchObject({ library: lib.path, kind: 'func' });
    }
    expect(symbolUsers(report, 'fix_fn').map((u) => u.path.slice(dir.length))).toEqual([
      '/bin/rpath',
      '/bin/runpath',
    ]);
  });

  it('lists the libc functions a static binary linked in, and binds strcpy@GLIBC to libc for a dynamic one', () => {
    expect(files.get('static')!.linkedFunctions).toContain('memcpy');
    const imp = files.get('no-canary')!.imports!.find((i) => i.name === '__strcpy_chk')!;
    expect(imp.library).toMatch(/\/libc\.so\.6$/);
    expect(imp.version).toMatch(/^GLIBC_/);
  });

  it('gates with --require: the hardened fixture passes, the others violate what they flipped', async () => {
    const gated = await auditRoot(hostRootFs('/'), {
      paths: [join(dir, 'bin')],
      require: 'relro=full,pie,nx,canary',
      closure: false,
      packages: false,
    });
    const v = Object.fromEntries(
      gated.files.map((f) => [f.path.slice(join(dir, 'bin').length + 1), f.violations]),
    );
    expect(v.hardened).toEqual([]);
    expect(v['no-pie']).toEqual(['pie']);
    expect(v.norelro).toEqual(['relro=full']);
    expect(v.lazy).toEqual(['relro=full']);
    expect(v['no-canary']).toEqual(['canary']);
    expect(v.execstack).toEqual(['nx']);
  });
});
