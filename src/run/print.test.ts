import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ImageConfig } from '../oci/model.ts';
import { parsePublish } from './network.ts';
import { kubernetesPod, podName, printHardened, runnableReference, shellQuote } from './print.ts';

const fixtures = join(import.meta.dirname, '../../test/fixtures/run');
const ajv = new Ajv({ allErrors: true, strict: true });
const validPod = ajv.compile(JSON.parse(readFileSync(join(fixtures, 'pod.schema.json'), 'utf8')));
const restricted = ajv.compile(
  JSON.parse(readFileSync(join(fixtures, 'pod-restricted.schema.json'), 'utf8')),
);

const config: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  config: {
    User: 'app',
    ExposedPorts: { '443/tcp': {}, '53/udp': {}, bogus: {} },
    Volumes: { '/data': {}, '/var/cache/x': {} },
  },
  rootfs: { type: 'layers', diff_ids: [] },
};
const app = { uid: 1000, gid: 1000, home: '/', source: 'image' } as const;

describe('printHardened', () => {
  describe('docker and podman', () => {
    it('prints the hardened flags, ports only with --net, and the overrides', () => {
      const r = printHardened('podman', {
        reference: 'oci:/tmp/my layout:v1',
        config,
        user: app,
        net: true,
        env: ['A=b c'],
        entrypoint: '/bin/sh',
        cmd: ['-c', "echo 'hi'"],
        volumes: [{ host: '/srv', container: '/srv', readOnly: true }],
      });
      expect(r.text).toBe(
        [
          'podman run --rm',
          '--read-only',
          '--cap-drop=ALL',
          '--security-opt=no-new-privileges',
          '--user 1000:1000',
          '--tmpfs /tmp:rw,noexec,nosuid,nodev,size=64m',
          '--publish 127.0.0.1:443:443/tcp',
          '--publish 127.0.0.1:53:53/udp',
          "--env 'A=b c'",
          '--volume /srv:/srv:ro',
          '--entrypoint /bin/sh',
          `'oci:/tmp/my layout:v1' -c 'echo '\\''hi'\\'''`,
        ].join(' \\\n  ') + '\n',
      );
      expect(r.warnings).toEqual(['skipped exposed port "bogus": want PORT[/tcp|udp|sctp]']);
    });

    it('never prints a root user', () => {
      const r = printHardened('docker', { reference: 'x', config, user: { ...app, uid: 0, gid: 0 } });
      expect(r.text).toContain('--user 65532:65532');
      expect(r.warnings[0]).toContain('runs as root');
    });

    it('publishes the declared ports on 127.0.0.1, and has no network at all when the image declares none', () => {
      const r = printHardened('docker', { reference: 'x', config, user: app });
      expect(r.text).toContain('--publish 127.0.0.1:443:443/tcp \\\n  --publish 127.0.0.1:53:53/udp');
      expect(r.text).not.toContain('--network=none');
      const none = printHardened('docker', { reference: 'x', config: { ...config, config: {} }, user: app });
      expect(none.text).toContain('--network=none');
      expect(none.text).not.toContain('--publish');
    });

    it('prints -p mappings instead of the declared ports when given', () => {
      const r = printHardened('podman', {
        reference: 'x',
        config,
        user: app,
        publish: [parsePublish('8443:443'), parsePublish('[::1]:53:53/udp')],
      });
      expect(r.text).toContain("--publish 8443:443/tcp \\\n  --publish '[::1]:53:53/udp'");
      expect(r.text).not.toContain('127.0.0.1:443');
    });

    it('prints podman secrets (created, then mounted for the run user) and docker read-only binds', () => {
      const secrets = [{ name: 'db_pass', host: '/home/me/db pass.txt' }];
      const podman = printHardened('podman', { reference: 'x', config, user: app, secrets });
      expect(podman.text.split('\n')[0]).toBe("podman secret create db_pass '/home/me/db pass.txt'");
      expect(podman.text).toContain('--secret db_pass,type=mount,uid=1000,gid=1000,mode=0400');
      const docker = printHardened('docker', { reference: 'x', config, user: app, secrets });
      expect(docker.text).toContain(
        "--mount 'type=bind,source=/home/me/db pass.txt,target=/run/secrets/db_pass,readonly'",
      );
    });
  });

  describe('kubernetes', () => {
    const yaml = printHardened('kubernetes', {
      reference: 'registry.invalid/team/Web_App:2@sha256:00',
      config,
      user: app,
      cmd: ['serve'],
      workdir: '/srv',
      hostname: 'web',
    });
    const pod = parse(yaml.text);

    it('emits a Pod that validates against the schema and the restricted profile', () => {
      expect(validPod(pod), JSON.stringify(validPod.errors)).toBe(true);
      expect(restricted(pod), JSON.stringify(restricted.errors)).toBe(true);
    });

    it('gives each image VOLUME an emptyDir and /tmp a memory-backed one', () => {
      expect(pod.spec.volumes).toEqual([
        { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
        { name: 'vol-data', emptyDir: {} },
        { name: 'vol-var-cache-x', emptyDir: {} },
      ]);
    });

    it('is caught by the schema when a field is wrong (the schema can fail)', () => {
      const typo = structuredClone(pod);
      typo.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
      expect(validPod(typo)).toBe(false);
      const badPort = structuredClone(pod);
      badPort.spec.containers[0].ports[0].protocol = 'tcp';
      expect(validPod(badPort)).toBe(false);
      const escalate = structuredClone(pod);
      escalate.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
      expect(validPod(escalate)).toBe(true);
      expect(restricted(escalate)).toBe(false);
    });

    it('mounts each secret from a Secret volume at /run/secrets/NAME and says how to create it', () => {
      const r = printHardened('kubernetes', {
        reference: 'registry.invalid/app:1',
        config,
        user: app,
        secrets: [{ name: 'DB_pass', host: '/s/db' }],
      });
      expect(r.text.split('\n')[0]).toBe('# kubectl create secret generic db-pass --from-file=DB_pass=/s/db');
      const p = parse(r.text);
      expect(validPod(p), JSON.stringify(validPod.errors)).toBe(true);
      expect(restricted(p), JSON.stringify(restricted.errors)).toBe(true);
      expect(p.spec.volumes).toContainEqual({
        name: 'vol-secret-db-pass',
        secret: { secretName: 'db-pass', items: [{ key: 'DB_pass', path: 'DB_pass' }], defaultMode: 0o400 },
      });
      expect(p.spec.containers[0].volumeMounts).toContainEqual({
        name: 'vol-secret-db-pass',
        mountPath: '/run/secrets/DB_pass',
        subPath: 'DB_pass',
        readOnly: true,
      });
    });

    it('lists the -p container ports when given', () => {
      const p = parse(
        printHardened('kubernetes', {
          reference: 'r.invalid/a:1',
          config,
          user: app,
          publish: [parsePublish('8080:80'), parsePublish('127.0.0.1:8081:80')],
        }).text,
      );
      expect(p.spec.containers[0].ports).toEqual([{ containerPort: 80, protocol: 'TCP' }]);
    });

    it('warns that host volumes are not carried over', () => {
      const w: string[] = [];
      kubernetesPod(
        { reference: 'x', config, user: app, volumes: [{ host: '/h', container: '/c', readOnly: false }] },
        w,
      );
      expect(w[0]).toContain('/h:/c is not carried into the Pod');
    });
  });
});

describe('runnableReference', () => {
  const digest = `sha256:${'ab'.repeat(32)}` as const;
  it('pins --image to the image digest, which a push keeps', () => {
    expect(
      runnableReference('oci:out:python', 'registry.invalid/team/python:1', digest, { local: true }),
    ).toBe(`registry.invalid/team/python:1@${digest}`);
  });
  it('keeps a digest --image already has', () => {
    const other = `sha256:${'cd'.repeat(32)}`;
    expect(runnableReference('oci:out', `registry.invalid/a@${other}`, digest)).toBe(
      `registry.invalid/a@${other}`,
    );
  });
  it('uses a registry IMAGE itself, without docker://', () => {
    expect(runnableReference('docker://127.0.0.1:5000/app:2', undefined, digest)).toBe(
      `127.0.0.1:5000/app:2@${digest}`,
    );
  });
  it.each([
    ['oci:out:python', {}],
    ['oci-archive:img.tar', {}],
    ['./out', { local: true }],
  ])('refuses the local image %s without --image, saying to push it', (image, options) => {
    expect(() => runnableReference(image, undefined, digest, options)).toThrow(
      expect.objectContaining({
        code: 'RUN_REFERENCE_INVALID',
        message: expect.stringContaining(`push it (pare push ${image} REGISTRY/REPO:TAG) and give --image`),
      }),
    );
  });
  it('refuses an --image that is not a registry reference', () => {
    expect(() => runnableReference('oci:out', 'oci:elsewhere:x', digest)).toThrow(
      expect.objectContaining({
        code: 'RUN_REFERENCE_INVALID',
        message: expect.stringContaining('--image "oci:elsewhere:x"'),
      }),
    );
  });
});

describe('podName', () => {
  it.each([
    ['registry.invalid/team/Web_App:2@sha256:00', 'web-app'],
    ['oci:/tmp/layout:v1', 'layout'],
    ['oci-archive:./img.tar', 'img-tar'],
    ['_', 'app'],
  ])('%s → %s', (ref, name) => {
    expect(podName(ref)).toBe(name);
  });
});

describe('shellQuote', () => {
  it.each([
    ['plain/path:1', 'plain/path:1'],
    ['', "''"],
    ["it's", `'it'\\''s'`],
    ['$HOME', "'$HOME'"],
  ])('%j → %s', (s, q) => {
    expect(shellQuote(s)).toBe(q);
  });
});
