import { describe, expect, it } from 'vitest';
import type { SandboxSpec } from './sandbox.ts';
import { bwrapArgs } from './sandbox.ts';

const spec: SandboxSpec = {
  rootfs: '/cache/abc',
  user: { uid: 65532, gid: 65532, home: '/', source: 'default' },
  process: {
    argv: ['/bin/app', '-x'],
    env: [
      ['A', '1'],
      ['PATH', '/bin'],
    ],
    cwd: '/srv',
    hostname: 'pare',
  },
  volumes: [{ host: '/h', container: '/data', readOnly: true }],
};
const top = [
  { name: 'bin', kind: 'symlink', target: 'usr/bin' },
  { name: 'dev', kind: 'dir' },
  { name: 'etc', kind: 'dir' },
  { name: 'proc', kind: 'dir' },
  { name: 'run', kind: 'other' },
  { name: 'tmp', kind: 'dir' },
  { name: 'usr', kind: 'dir' },
] as const;

describe('bwrapArgs', () => {
  it('builds the hardened sandbox: tmpfs root with the image bound read-only, then remounted read-only', () => {
    expect(bwrapArgs(spec, top).join(' ')).toBe(
      [
        '--unshare-all --unshare-user --disable-userns --die-with-parent --new-session --uid 65532 --gid 65532 --hostname pare',
        '--tmpfs / --symlink usr/bin /bin --ro-bind /cache/abc/etc /etc --ro-bind /cache/abc/usr /usr',
        '--proc /proc --dev /dev --size 67108864 --perms 1777 --tmpfs /tmp --ro-bind /h /data --remount-ro /',
        '--chdir /srv --clearenv --setenv A 1 --setenv PATH /bin',
        '--cap-drop ALL --seccomp 3 --info-fd 4 -- /bin/app -x',
      ].join(' '),
    );
  });

  it('shares the network only with net, and binds resolv.conf when the image has one', () => {
    const a = bwrapArgs({ ...spec, net: true, newSession: false, seccomp: false }, top, { resolvConf: true });
    expect(a.slice(0, 5)).toEqual([
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--share-net',
      '--die-with-parent',
    ]);
    expect(a).not.toContain('--new-session');
    expect(a).not.toContain('--seccomp');
    expect(a.join(' ')).toContain(
      '--ro-bind /etc/resolv.conf /etc/resolv.conf --ro-bind /h /data --remount-ro /',
    );
  });

  it('passes argv after -- so a command that looks like an option stays a command', () => {
    const a = bwrapArgs({ ...spec, process: { ...spec.process, argv: ['--help'] } }, []);
    expect(a.slice(-2)).toEqual(['--', '--help']);
  });
});
