import { describe, expect, it } from 'vitest';
import { parsePublish } from './network.ts';
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

  it('rebuilds /etc with the generated hosts file, and the host resolv.conf when there is a network', () => {
    const etc = [
      { name: 'hosts', kind: 'file' },
      { name: 'passwd', kind: 'file' },
      { name: 'resolv.conf', kind: 'file' },
      { name: 'ssl', kind: 'dir' },
      { name: 'localtime', kind: 'symlink', target: '/usr/share/zoneinfo/UTC' },
    ] as const;
    const offline = bwrapArgs(spec, top, { etc, resolvConf: true }).join(' ');
    expect(offline).toContain(
      [
        '--tmpfs /etc --ro-bind /cache/abc/etc/passwd /etc/passwd',
        '--ro-bind /cache/abc/etc/resolv.conf /etc/resolv.conf --ro-bind /cache/abc/etc/ssl /etc/ssl',
        '--symlink /usr/share/zoneinfo/UTC /etc/localtime',
        '--perms 0444 --ro-bind-data 5 /etc/hosts --remount-ro /etc',
      ].join(' '),
    );
    expect(offline).not.toContain('--ro-bind /cache/abc/etc /etc');
    const published = bwrapArgs({ ...spec, publish: [parsePublish('8080:80')] }, top, {
      etc,
      resolvConf: true,
    });
    expect(published.join(' ')).toContain(
      '--symlink /usr/share/zoneinfo/UTC /etc/localtime --perms 0444 --ro-bind-data 5 /etc/hosts --ro-bind /etc/resolv.conf /etc/resolv.conf --remount-ro /etc',
    );
    // bwrap waits for the network before it executes the command
    expect(published.slice(-5)).toEqual(['--block-fd', '6', '--', '/bin/app', '-x']);
  });

  it('puts each secret at /run/secrets/NAME from its own descriptor, mode 0400, in a rebuilt /run', () => {
    const dirRun = top.map((e) => (e.name === 'run' ? { name: 'run', kind: 'dir' as const } : e));
    expect(
      bwrapArgs({ ...spec, secrets: [{ name: 'a', host: '/s/a' }] }, dirRun, {
        run: [{ name: 'lock', kind: 'dir' }],
      }).join(' '),
    ).toContain(
      '--tmpfs /run --ro-bind /cache/abc/run/lock /run/lock --perms 0400 --ro-bind-data 7 /run/secrets/a',
    );
    // a /run that is not a directory (here: a FIFO) is replaced, never a reason to drop a secret
    const a = bwrapArgs(
      {
        ...spec,
        secrets: [
          { name: 'a', host: '/s/a' },
          { name: 'b', host: '/s/b' },
        ],
      },
      top,
      { etc: [], run: [{ name: 'lock', kind: 'dir' }] },
    ).join(' ');
    expect(a).toContain(
      '--tmpfs /run --perms 0400 --ro-bind-data 7 /run/secrets/a --perms 0400 --ro-bind-data 8 /run/secrets/b --remount-ro /run',
    );
    expect(a).not.toContain('/s/a');
  });

  it('passes argv after -- so a command that looks like an option stays a command', () => {
    const a = bwrapArgs({ ...spec, process: { ...spec.process, argv: ['--help'] } }, []);
    expect(a.slice(-2)).toEqual(['--', '--help']);
  });
});
