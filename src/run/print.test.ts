import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ImageConfig } from '../oci/model.ts';
import { kubernetesPod, podName, printHardened, shellQuote } from './print.ts';

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
      expect(r.text).toContain('--network=none');
      expect(r.warnings[0]).toContain('runs as root');
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
