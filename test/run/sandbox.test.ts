import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/digest/index.ts';
import {
  bufferContent,
  dirEntry,
  fileEntry,
  hostFileContent,
  symlinkEntry,
  Tree,
} from '../../src/fstree/index.ts';
import type { ImageConfig } from '../../src/oci/model.ts';
import { prepareRun, type RunOptions, startSandbox, unpackCached } from '../../src/run/index.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { compileProbe } from '../helpers/probe.ts';

/**
 * The sandbox proven from the inside: a static C probe (test/fixtures/run/probe.c) runs under the real bwrap in a
 * root filesystem this test generates, unpacks through the rootfs cache, and reports what it can see and do.
 */

const peers = peersOrSkip('bwrap', 'gcc');

let work: string;
let rootfs: string;
let unpackReport: Awaited<ReturnType<typeof unpackCached>>;

const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1001:app:/home/app:/bin/probe\n';
const GROUP = 'root:x:0:\napp:x:1001:\nstaff:x:50:app\n';

function config(run: ImageConfig['config'] = {}): ImageConfig {
  return {
    architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    os: 'linux',
    config: run,
    rootfs: { type: 'layers', diff_ids: [] },
  };
}

interface Outcome {
  code: number;
  out: string;
  lines: string[];
}

async function run(cmd: string[], options: RunOptions = {}, cfg: ImageConfig = config()): Promise<Outcome> {
  const { spec } = await prepareRun({ kind: 'rootfs', path: rootfs, config: cfg }, { cmd, ...options });
  const h = await startSandbox(spec, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  let out = '';
  let err = '';
  h.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  h.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const code = await h.exited;
  if (code === 64) throw new Error(`probe rejected its arguments: ${err}`);
  return { code, out, lines: out.trim().split('\n') };
}

describe.skipIf(peers.skip)('pare run sandbox (real bwrap)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'pare-run-'));
    const probe = compileProbe(peers.paths.gcc!, join(work, 'probe'));
    // note: dynamically linked, and the image has no ld.so
    compileProbe(peers.paths.gcc!, join(work, 'dynamic'), { dynamic: true });
    const tree = Tree.from([
      ['/bin/probe', fileEntry(await hostFileContent(probe), { mode: 0o755 })],
      ['/bin/probe-link', { kind: 'hardlink', target: '/bin/probe', mode: 0o755, uid: 0, gid: 0, mtime: 0 }],
      ['/etc/passwd', fileEntry(bufferContent(PASSWD))],
      ['/etc/group', fileEntry(bufferContent(GROUP))],
      ['/etc/motd', fileEntry(bufferContent('hello from the image\n'))],
      ['/home/app', dirEntry({ mode: 0o700, uid: 1000, gid: 1001 })],
      ['/data', dirEntry()],
      ['/usr/lib', dirEntry({ mode: 0o555 })],
      ['/lib', symlinkEntry('usr/lib')],
      // note: setuid root in the image; the unpack must drop the bit
      ['/usr/bin/su', fileEntry(bufferContent('#!/bin/false\n'), { mode: 0o4755 })],
      ['/bin/script', fileEntry(bufferContent('#!/bin/sh -e\necho hi\n'), { mode: 0o755 })],
      ['/bin/noexec', fileEntry(bufferContent('data'), { mode: 0o644 })],
      ['/bin/dynamic', fileEntry(await hostFileContent(join(work, 'dynamic')), { mode: 0o755 })],
      ['/run/initctl', { kind: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 0 }],
    ]);
    unpackReport = await unpackCached(sha256('sandbox-test-rootfs'), async () => tree, {
      cacheDir: join(work, 'cache'),
    });
    rootfs = unpackReport.path;
  });

  afterAll(() => {
    if (work) {
      execFileSync('chmod', ['-R', 'u+w', work]);
      rmSync(work, { recursive: true, force: true });
    }
  });

  describe('when the image names no user', () => {
    let o: Outcome;
    beforeAll(async () => {
      o = await run([
        '/bin/probe',
        'id',
        'status',
        'write',
        '/x',
        'write',
        '/etc/motd',
        'write',
        '/tmp/x',
        'net',
        'cwd',
        'env',
        'HOME',
        'env',
        'HOSTNAME',
        'env',
        'PATH',
        'exit',
        '0',
      ]);
    });
    it('runs as 65532:65532', () => expect(o.lines).toContain('id: uid=65532 gid=65532'));
    it('has no effective capabilities', () => expect(o.lines).toContain('status: CapEff: 0000000000000000'));
    it('has no new privileges', () => expect(o.lines).toContain('status: NoNewPrivs: 1'));
    it('runs under a seccomp filter', () => expect(o.lines).toContain('status: Seccomp: 2'));
    it('cannot write to the root or the image files', () => {
      expect(o.lines).toContain('write /x: EROFS');
      expect(o.lines).toContain('write /etc/motd: EROFS');
    });
    it('can write to /tmp', () => expect(o.lines).toContain('write /tmp/x: ok'));
    it('sees no network interface but lo', () => expect(o.lines).toContain('net: lo'));
    it('starts in / with docker’s default environment', () => {
      expect(o.lines).toContain('cwd: /');
      expect(o.lines).toContain('env HOME: /');
      expect(o.lines).toContain('env HOSTNAME: pare');
      expect(o.lines).toContain('env PATH: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    });
  });

  describe('when the process calls a denied syscall', () => {
    it.each(['keyctl', 'unshare', 'mount', 'ptrace', 'personality'])('%s fails with EPERM', async (call) => {
      const o = await run(['/bin/probe', call]);
      expect(o.lines).toEqual([`${call}: EPERM`]);
    });

    it('is the seccomp filter that refuses keyctl (not the missing capabilities)', async () => {
      const o = await run(['/bin/probe', 'status', 'keyctl'], { seccomp: false });
      expect(o.lines).toContain('status: Seccomp: 0');
      // bwrap sets no-new-privileges by itself, filter or not
      expect(o.lines).toContain('status: NoNewPrivs: 1');
      expect(o.lines).not.toContain('keyctl: EPERM');
    });
  });

  describe('with the seccomp filter off', () => {
    it('still cannot create a user namespace (bwrap --disable-userns)', async () => {
      const o = await run(['/bin/probe', 'unshare'], { seccomp: false });
      expect(o.lines).toEqual(['unshare: ENOSPC']);
    });
  });

  describe('/tmp', () => {
    it('is bounded (64 MiB by default, --tmp-size to change)', async () => {
      expect((await run(['/bin/probe', 'fill', '/tmp/a', '1024'])).lines).toEqual(['fill /tmp/a: ok']);
      expect((await run(['/bin/probe', 'fill', '/tmp/a', String(65 * 1024)])).lines).toEqual([
        'fill /tmp/a: ENOSPC',
      ]);
      expect((await run(['/bin/probe', 'fill', '/tmp/a', '1024'], { tmpSize: 512 * 1024 })).lines).toEqual([
        'fill /tmp/a: ENOSPC',
      ]);
    });
  });

  describe('when the image names a user', () => {
    it('resolves the name through the image’s /etc/passwd and sets HOME', async () => {
      const o = await run(['/bin/probe', 'id', 'env', 'HOME'], {}, config({ User: 'app' }));
      expect(o.lines).toEqual(['id: uid=1000 gid=1001', 'env HOME: /home/app']);
    });
    it('lets --user override it, with a group name from /etc/group', async () => {
      const o = await run(['/bin/probe', 'id'], { user: 'app:staff' }, config({ User: 'app' }));
      expect(o.lines).toEqual(['id: uid=1000 gid=50']);
    });
    it('keeps root powerless inside the sandbox', async () => {
      const o = await run(['/bin/probe', 'id', 'status', 'write', '/y', 'keyctl'], { user: 'root' });
      expect(o.lines).toEqual([
        'id: uid=0 gid=0',
        'status: CapEff: 0000000000000000',
        'status: NoNewPrivs: 1',
        'status: Seccomp: 2',
        'write /y: EROFS',
        'keyctl: EPERM',
      ]);
    });
  });

  describe('name resolution', () => {
    it('resolves localhost and the hostname through a generated, read-only /etc/hosts', async () => {
      const o = await run(
        [
          '/bin/probe',
          'resolve',
          'localhost',
          'resolve',
          'box',
          'owner',
          '/etc/hosts',
          'write',
          '/etc/hosts',
          'read',
          '/etc/motd',
        ],
        { hostname: 'box' },
      );
      expect(o.lines).toEqual([
        'resolve localhost: 127.0.0.1',
        'resolve box: 127.0.1.1',
        'owner /etc/hosts: 65532:65532 444',
        'write /etc/hosts: EROFS',
        'read /etc/motd: hello from the image',
      ]);
    });
    it('keeps the rest of the image’s /etc read-only and nothing new can be created there', async () => {
      const o = await run(['/bin/probe', 'write', '/etc/new', 'write', '/etc/motd']);
      expect(o.lines).toEqual(['write /etc/new: EROFS', 'write /etc/motd: EROFS']);
    });
  });

  describe('--secret', () => {
    it('shows the file at /run/secrets/NAME, read-only and owned by the run user, and nowhere else', async () => {
      const file = join(work, 'token');
      writeFileSync(file, 'hunter2\n', { mode: 0o600 });
      const o = await run(
        [
          '/bin/probe',
          'read',
          '/run/secrets/token',
          'owner',
          '/run/secrets/token',
          'write',
          '/run/secrets/token',
          'write',
          '/run/secrets/other',
          'env',
          'token',
        ],
        { user: 'app', secrets: [`token=${file}`] },
      );
      expect(o.lines).toEqual([
        'read /run/secrets/token: hunter2',
        'owner /run/secrets/token: 1000:1001 400',
        'write /run/secrets/token: EROFS',
        'write /run/secrets/other: EROFS',
        'env token: (unset)',
      ]);
      // the image's /run stays empty, the cache untouched
      expect(readdirSync(join(rootfs, 'run'))).toEqual([]);
    });
    it('refuses a secret that is not a regular file, or a name that is not a file name', async () => {
      await expect(run(['/bin/probe'], { secrets: [`dir=${work}`] })).rejects.toThrow(
        expect.objectContaining({
          code: 'RUN_SECRET_INVALID',
          message: expect.stringContaining('not a regular file'),
        }),
      );
      await expect(run(['/bin/probe'], { secrets: ['a/b=/etc/passwd'] })).rejects.toThrow(
        expect.objectContaining({ code: 'RUN_SECRET_INVALID' }),
      );
    });
  });

  describe('with --net', () => {
    it.skipIf(!existsSync('/etc/resolv.conf'))(
      'sees the host’s resolv.conf, read-only (none without a network)',
      async () => {
        const first = readFileSync('/etc/resolv.conf', 'utf8').split('\n')[0];
        const o = await run(['/bin/probe', 'read', '/etc/resolv.conf', 'write', '/etc/resolv.conf'], {
          net: true,
        });
        expect(o.lines).toEqual([`read /etc/resolv.conf: ${first}`, 'write /etc/resolv.conf: EROFS']);
        const off = await run(['/bin/probe', 'read', '/etc/resolv.conf']);
        expect(off.lines).toEqual(['read /etc/resolv.conf: ENOENT']);
      },
    );

    it('shares the host network', async () => {
      const host = readFileSync('/proc/net/dev', 'utf8')
        .split('\n')
        .slice(2)
        .filter((l) => l.includes(':')).length;
      const o = await run(['/bin/probe', 'net'], { net: true });
      expect(o.lines[0]!.split(' ').length - 1).toBe(host);
    });
  });

  describe('exit codes', () => {
    it.each([0, 1, 7, 255])('passes exit %i through', async (n) => {
      expect((await run(['/bin/probe', 'exit', String(n)])).code).toBe(n);
    });
    it('reports a command killed by SIGKILL as 137', async () => {
      expect((await run(['/bin/probe', 'kill', '9'])).code).toBe(137);
    });
  });

  describe('signals', () => {
    it.each([
      ['SIGTERM', 15],
      ['SIGINT', 2],
      ['SIGHUP', 1],
    ] as const)('forwards %s to the command', async (sig, n) => {
      const { spec } = await prepareRun(
        { kind: 'rootfs', path: rootfs, config: config() },
        { cmd: ['/bin/probe', 'wait'] },
      );
      const h = await startSandbox(spec, { stdin: 'ignore', stdout: 'pipe', stderr: 'inherit' });
      let out = '';
      await new Promise<void>((resolve) => {
        h.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('ready\n')) resolve();
        });
      });
      expect(h.signal(sig)).toBe(true);
      expect(await h.exited).toBe(100 + n);
      expect(out).toContain(`signal: ${n}`);
    });
  });

  describe('volumes', () => {
    it('binds a host directory read-write, and read-only with :ro', async () => {
      const host = join(work, 'vol');
      mkdirSync(host, { recursive: true });
      const o = await run(['/bin/probe', 'write', '/data/rw', 'write', '/mnt/ro/no', 'read', '/mnt/ro/rw'], {
        volumes: [`${host}:/data`, `${host}:/mnt/ro:ro`],
      });
      expect(o.lines).toEqual(['write /data/rw: ok', 'write /mnt/ro/no: EROFS', 'read /mnt/ro/rw: x']);
      expect(readFileSync(join(host, 'rw'), 'utf8')).toBe('x\n');
    });
    it('refuses a target that would have to be created inside the read-only image', async () => {
      await expect(run(['/bin/probe'], { volumes: [`${work}:/etc/new`] })).rejects.toThrow(
        expect.objectContaining({
          code: 'RUN_VOLUME_INVALID',
          message: expect.stringContaining('"/etc/new" does not exist in the image'),
        }),
      );
    });
  });

  describe('entrypoint and cmd (docker semantics)', () => {
    const cfg = config({
      Entrypoint: ['/bin/probe', 'argv'],
      Cmd: ['exit', '3'],
      WorkingDir: '/data',
      Env: ['GREETING=hi'],
    });
    it('runs Entrypoint ++ Cmd in WorkingDir with the image Env', async () => {
      const o = await run(
        [],
        {},
        { ...cfg, config: { ...cfg.config, Cmd: ['cwd', 'env', 'GREETING', 'exit', '3'] } },
      );
      expect(o).toMatchObject({
        code: 3,
        lines: ['argv: /bin/probe argv cwd env GREETING exit 3', 'cwd: /data', 'env GREETING: hi'],
      });
    });
    it('replaces Cmd with the arguments after --', async () => {
      const o = await run(['exit', '4'], {}, cfg);
      expect(o).toMatchObject({ code: 4, lines: ['argv: /bin/probe argv exit 4'] });
    });
    it('replaces Entrypoint and drops the image Cmd with --entrypoint', async () => {
      const o = await run(['id'], { entrypoint: '/bin/probe-link', env: ['GREETING=bye'] }, cfg);
      expect(o.lines).toEqual(['id: uid=65532 gid=65532']);
      const e = await run(['env', 'GREETING'], { entrypoint: '/bin/probe-link', env: ['GREETING=bye'] }, cfg);
      expect(e.lines).toEqual(['env GREETING: bye']);
    });
  });

  describe('when the command cannot be executed in the image', () => {
    it.each([
      [['/bin/script'], 'needs the interpreter /bin/sh, which is not in the image'],
      [['/bin/dynamic'], 'needs the dynamic loader /lib'],
      [['/bin/noexec'], '/bin/noexec is not executable (mode 644)'],
      [['/bin/nothere'], 'no such file in the image'],
      [['probe2'], 'not found in the image on PATH='],
      [['/etc'], 'it is a directory in the image'],
    ])('%j fails before the sandbox starts, saying why', async (cmd, why) => {
      await expect(run(cmd)).rejects.toThrow(
        expect.objectContaining({ code: 'RUN_NO_COMMAND', message: expect.stringContaining(why) }),
      );
    });
    it('finds a command on the sandbox PATH', async () => {
      expect((await run(['probe', 'id'], { env: ['PATH=/usr/bin:/bin'] })).lines).toEqual([
        'id: uid=65532 gid=65532',
      ]);
    });
  });

  describe('the unpacked rootfs', () => {
    it('drops setuid bits and reports it', () => {
      expect(unpackReport.report.setidDropped).toEqual(['/usr/bin/su']);
      expect(statSync(join(rootfs, 'usr/bin/su')).mode & 0o7777).toBe(0o755);
    });
    it('skips FIFOs and device nodes and reports them', () => {
      expect(unpackReport.report.devicesSkipped).toEqual(['/run/initctl']);
      expect(readdirSync(join(rootfs, 'run'))).toEqual([]);
    });
    it('keeps hardlinks as hardlinks and directory modes', () => {
      expect(statSync(join(rootfs, 'bin/probe-link')).ino).toBe(statSync(join(rootfs, 'bin/probe')).ino);
      expect(statSync(join(rootfs, 'usr/lib')).mode & 0o777).toBe(0o555);
    });
    it('is reused on the next unpack of the same digest', async () => {
      const again = await unpackCached(
        sha256('sandbox-test-rootfs'),
        async () => {
          throw new Error('must not be called');
        },
        { cacheDir: join(work, 'cache') },
      );
      expect(again).toMatchObject({ path: rootfs, cached: true });
    });
  });

  describe('when several runs unpack one image at once', () => {
    it('all get one complete directory and no temp copy is left', async () => {
      const cacheDir = join(work, 'race');
      const tree = Tree.from([
        ...Array.from(
          { length: 200 },
          (_, i) => [`/d${i % 10}/f${i}`, fileEntry(bufferContent(`file ${i}\n`))] as const,
        ),
      ]);
      const results = await Promise.all(
        Array.from({ length: 6 }, () => unpackCached(sha256('race'), async () => tree, { cacheDir })),
      );
      expect(new Set(results.map((r) => r.path)).size).toBe(1);
      expect(results.filter((r) => !r.cached).length).toBe(1);
      expect(readdirSync(cacheDir)).toEqual([results[0]!.path.split('/').pop()]);
      expect(readFileSync(join(results[0]!.path, 'd3/f123'), 'utf8')).toBe('file 123\n');
    });
  });

  it('writes nothing into the rootfs cache while running', async () => {
    await run(['/bin/probe', 'write', '/tmp/z'], { volumes: [`${work}:/newtop`] });
    expect(readdirSync(rootfs).sort()).toEqual(['bin', 'data', 'etc', 'home', 'lib', 'run', 'usr']);
    writeFileSync(join(work, 'marker'), '');
  });
});
