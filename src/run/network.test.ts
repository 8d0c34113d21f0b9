import { describe, expect, it } from 'vitest';
import {
  findNetworkTool,
  findPasta,
  formatPublish,
  parsePublish,
  pastaArgs,
  slirp4netnsArgs,
  slirpHostfwd,
} from './network.ts';
import type { HostProbe } from './support.ts';

describe('parsePublish', () => {
  describe('when the mapping is well formed', () => {
    it.each([
      ['8080:80', { hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      ['127.0.0.1:8080:80', { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
      ['53:53/udp', { hostPort: 53, containerPort: 53, protocol: 'udp' }],
      ['[::1]:8443:443/tcp', { hostIp: '::1', hostPort: 8443, containerPort: 443, protocol: 'tcp' }],
      ['65535:1', { hostPort: 65535, containerPort: 1, protocol: 'tcp' }],
    ])('parses %s', (s, want) => {
      expect(parsePublish(s)).toEqual(want);
      expect(parsePublish(formatPublish(parsePublish(s)))).toEqual(want);
    });
  });

  describe('when it is not', () => {
    it.each([
      ['80', 'give both the host and the container port'],
      ['0:80', 'the host port "0" is not a number from 1 to 65535'],
      ['8080:65536', 'the container port "65536" is not'],
      ['8080:80/sctp', 'unknown protocol "sctp"'],
      ['localhost:8080:80', '"localhost" is not an IPv4 address'],
      ['[127.0.0.1]:8080:80', '"127.0.0.1" is not an IPv6 address'],
      ['1.2.3.4:5:6:7', 'give both the host and the container port'],
      ['8080-8090:80', 'the host port "8080-8090" is not'],
    ])('refuses %s: %s', (s, why) => {
      expect(() => parsePublish(s)).toThrow(
        expect.objectContaining({
          code: 'RUN_PUBLISH_INVALID',
          message: expect.stringContaining(why),
        }),
      );
    });
  });
});

describe('pastaArgs', () => {
  it('forwards only the published ports, closes every other direction, and keeps the gateway unmapped', () => {
    const a = pastaArgs([parsePublish('127.0.0.1:8080:80'), parsePublish('[::1]:5353:53/udp')], {
      netns: '/proc/7/ns/net',
      pidFile: '/t/pid',
    });
    expect(a.join(' ')).toBe(
      '--config-net -t 127.0.0.1/8080:80 -u ::1/5353:53 -T none -U none --no-map-gw --quiet --runas 0 --pid /t/pid --netns /proc/7/ns/net',
    );
  });
  it('runs a command in new namespaces in the foreground for a caller who is not root', () => {
    expect(pastaArgs([parsePublish('8080:80/udp')], { command: ['sh', '-c', 'x'] }).join(' ')).toBe(
      '--config-net -u 8080:80 -t none -T none -U none --no-map-gw --quiet --foreground -- sh -c x',
    );
  });
  it('says none for a protocol with no port (pasta would otherwise forward every bound port)', () => {
    expect(pastaArgs([parsePublish('8080:80')], { netns: '/n', pidFile: '/p' }).slice(0, 5)).toEqual([
      '--config-net',
      '-t',
      '8080:80',
      '-u',
      'none',
    ]);
  });
});

describe('findPasta', () => {
  const probe = (found: Record<string, string>): HostProbe => ({
    sysctl: () => undefined,
    which: (n) => found[n],
    isSetuidRoot: () => false,
    euid: () => 0,
  });
  it('finds pasta on PATH, or PARE_PASTA', () => {
    expect(findPasta(probe({ pasta: '/usr/bin/pasta' }), {})).toBe('/usr/bin/pasta');
    expect(findPasta(probe({ '/opt/pasta': '/opt/pasta' }), { PARE_PASTA: '/opt/pasta' })).toBe('/opt/pasta');
  });
  it('names the Debian package when pasta is missing', () => {
    expect(() => findPasta(probe({}), {})).toThrow(
      expect.objectContaining({
        code: 'RUN_NETWORK_MISSING',
        message:
          'cannot publish ports: pasta is not installed; install the Debian package passt (apt-get install passt) or set PARE_PASTA to its path',
      }),
    );
  });
});

describe('findNetworkTool', () => {
  const probe = (found: Record<string, string>): HostProbe => ({
    sysctl: () => undefined,
    which: (n) => found[n],
    isSetuidRoot: () => false,
    euid: () => 0,
  });
  const both = { pasta: '/usr/bin/pasta', slirp4netns: '/usr/bin/slirp4netns' };
  it.each([
    ['pasta when both are installed', both, {}, { kind: 'pasta', path: '/usr/bin/pasta' }],
    [
      'slirp4netns when pasta is missing',
      { slirp4netns: '/usr/bin/slirp4netns' },
      {},
      { kind: 'slirp4netns', path: '/usr/bin/slirp4netns' },
    ],
    [
      'slirp4netns when PARE_NETWORK asks for it',
      both,
      { PARE_NETWORK: 'slirp4netns' },
      { kind: 'slirp4netns', path: '/usr/bin/slirp4netns' },
    ],
    [
      'PARE_SLIRP4NETNS as its path',
      { '/opt/s': '/opt/s' },
      { PARE_SLIRP4NETNS: '/opt/s' },
      { kind: 'slirp4netns', path: '/opt/s' },
    ],
  ] as const)('gives %s', (_, found, env, want) => {
    expect(findNetworkTool(probe(found), env)).toEqual(want);
  });
  it('names both Debian packages when neither is installed, and refuses a missing pick', () => {
    expect(() => findNetworkTool(probe({}), {})).toThrow(
      'cannot publish ports: neither pasta nor slirp4netns is installed; install the Debian package passt (apt-get install passt), or slirp4netns',
    );
    expect(() =>
      findNetworkTool(probe({ pasta: '/usr/bin/pasta' }), { PARE_NETWORK: 'slirp4netns' }),
    ).toThrow(
      expect.objectContaining({
        code: 'RUN_NETWORK_MISSING',
        message: expect.stringContaining('apt-get install slirp4netns'),
      }),
    );
    expect(() => findNetworkTool(probe(both), { PARE_NETWORK: 'vpnkit' })).toThrow(
      expect.objectContaining({ code: 'RUN_PUBLISH_INVALID' }),
    );
  });
});

describe('slirp4netnsArgs', () => {
  it('configures the namespace by path as podman does, with ready/exit descriptors and an API socket', () => {
    const fds = { ready: 3, exit: 4, apiSocket: '/t/api.sock' };
    expect(slirp4netnsArgs({ pid: 42 }, fds).join(' ')).toBe(
      '--configure --mtu=65520 --disable-host-loopback --enable-sandbox --enable-seccomp --ready-fd=3 --exit-fd=4 --api-socket=/t/api.sock --netns-type=path /proc/42/ns/net tap0',
    );
    const rootless = slirp4netnsArgs({ userns: '/proc/7/ns/user', netns: '/proc/7/ns/net' }, fds);
    expect(rootless).not.toContain('--enable-sandbox');
    expect(rootless.slice(-4)).toEqual([
      '--userns-path=/proc/7/ns/user',
      '--netns-type=path',
      '/proc/7/ns/net',
      'tap0',
    ]);
  });
  it('publishes each port through add_hostfwd (every address unless one is given)', () => {
    expect(slirpHostfwd(parsePublish('8080:80'))).toEqual({
      execute: 'add_hostfwd',
      arguments: { proto: 'tcp', host_addr: '0.0.0.0', host_port: 8080, guest_port: 80 },
    });
    expect(slirpHostfwd(parsePublish('127.0.0.1:5353:53/udp')).arguments).toEqual({
      proto: 'udp',
      host_addr: '127.0.0.1',
      host_port: 5353,
      guest_port: 53,
    });
  });
});
