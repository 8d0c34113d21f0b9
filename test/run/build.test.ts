import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { peersOrSkip } from '../helpers/peers.ts';
import { compileProbe } from '../helpers/probe.ts';

/**
 * `pare build` → `pare run`: the images pare itself builds run in the sandbox. A files-only project (the fixture
 * test/fixtures/build/files-only, no entrypoint) and the same project with the static probe added. The shipped
 * examples are built and run in test/build/examples.test.ts.
 */

const peers = peersOrSkip('bwrap', 'gcc');
const ROOT = join(import.meta.dirname, '../..');
const HELLO = join(ROOT, 'test/fixtures/build/files-only');

let work: string;

function pare(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/pare.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache'), SOURCE_DATE_EPOCH: '0' },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(peers.skip)('pare build (a files-only project) | pare run', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'pare-run-build-'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('as shipped', () => {
    beforeAll(() => {
      const b = pare(['build', HELLO, '-o', join(work, 'hello'), '-t', 'hello']);
      expect(b.code, b.stderr).toBe(0);
    });

    it('says the script needs /bin/sh, which the files-only image lacks', () => {
      const r = pare(['run', `oci:${join(work, 'hello')}:hello`, '--', '/app/hello.sh']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        'cannot run "/app/hello.sh": /app/hello.sh needs the interpreter /bin/sh, which is not in the image',
      );
    });

    it('prints a Pod for it that validates against the Pod schema', () => {
      const r = pare([
        'run',
        '--print',
        'kubernetes',
        '--ref',
        'registry.invalid/hello:1',
        `oci:${join(work, 'hello')}:hello`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const schema = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/run/pod.schema.json'), 'utf8'));
      const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);
      const pod = parseYaml(r.stdout);
      expect(validate(pod), JSON.stringify(validate.errors)).toBe(true);
      expect(pod.spec.containers[0].ports).toEqual([{ containerPort: 8080, protocol: 'TCP' }]);
    });
  });

  describe('with a static program added', () => {
    beforeAll(() => {
      const src = join(work, 'src');
      cpSync(HELLO, src, { recursive: true });
      compileProbe(peers.paths.gcc!, join(src, 'probe'));
      const project = parseYaml(readFileSync(join(src, 'pare.yaml'), 'utf8'));
      project.files.push({ src: 'probe', dest: '/usr/bin/probe', mode: '0755' });
      // The probe is a host program: an image for another machine would not run it (pare build refuses it there).
      project.platforms = [`linux/${process.arch === 'x64' ? 'amd64' : process.arch}`];
      project.image.entrypoint = ['/usr/bin/probe'];
      project.image.cmd = [
        'id',
        'cwd',
        'env',
        'GREETING',
        'read',
        '/etc/motd',
        'write',
        '/app/data/x',
        'write',
        '/tmp/x',
        'status',
        'net',
        'keyctl',
        'exit',
        '3',
      ];
      writeFileSync(join(src, 'pare.yaml'), stringify(project));
      const b = pare([
        'build',
        src,
        '-o',
        join(work, 'probe-image'),
        '-t',
        'v1',
        '--tar',
        join(work, 'probe.tar'),
      ]);
      expect(b.code, b.stderr).toBe(0);
    });

    it('runs hardened: nonroot, read-only root, no capabilities, seccomp, loopback only', () => {
      const r = pare(['run', `oci:${join(work, 'probe-image')}:v1`]);
      expect(r.stdout.trim().split('\n')).toEqual([
        'id: uid=65532 gid=65532',
        'cwd: /app',
        'env GREETING: hello',
        'read /etc/motd: built by pare',
        'write /app/data/x: EROFS',
        'write /tmp/x: ok',
        'status: CapEff: 0000000000000000',
        'status: NoNewPrivs: 1',
        'status: Seccomp: 2',
        'net: lo',
        'keyctl: EPERM',
      ]);
      expect(r.code).toBe(3);
    });

    it('runs the single-file archive, as a bare path and as docker-archive:', () => {
      for (const ref of [join(work, 'probe.tar'), `docker-archive:${join(work, 'probe.tar')}`]) {
        const r = pare(['run', ref, '--', 'id', 'exit', '0']);
        expect([ref, r.code, r.stdout]).toEqual([ref, 0, 'id: uid=65532 gid=65532\n']);
      }
    });

    it('runs an unpacked root filesystem directory (here: the cache entry) with -- CMD', () => {
      const cache = join(work, 'cache', 'pare', 'rootfs');
      // note: the hello image is in the cache too; pick the entry that has the probe
      const dir = readdirSync(cache).find((d) => existsSync(join(cache, d, 'usr/bin/probe')));
      const r = pare(['run', '--user', 'nonroot', join(cache, dir!), '--', '/usr/bin/probe', 'id', 'cwd']);
      expect(r.stdout).toBe('id: uid=65532 gid=65532\ncwd: /\n');
      expect(r.code).toBe(0);
    });
  });
});
