import { describe, expect, it } from 'vitest';
import { DEFAULT_PATH, parseSize, parseVolume, resolveProcess } from './spec.ts';
import type { ExecUser } from './user.ts';

const user: ExecUser = { uid: 1000, gid: 1000, home: '/home/app', source: 'image' };
const image = {
  Entrypoint: ['/bin/app', '--serve'],
  Cmd: ['--port', '80'],
  Env: ['A=1', 'PATH=/bin'],
  WorkingDir: '/srv',
};

describe('resolveProcess', () => {
  describe('argv (docker semantics)', () => {
    it.each([
      ['image defaults', {}, ['/bin/app', '--serve', '--port', '80']],
      ['-- CMD replaces Cmd', { cmd: ['--port', '81'] }, ['/bin/app', '--serve', '--port', '81']],
      ['--entrypoint clears the image Cmd', { entrypoint: '/bin/sh' }, ['/bin/sh']],
      ['--entrypoint with -- CMD', { entrypoint: '/bin/sh', cmd: ['-c', 'true'] }, ['/bin/sh', '-c', 'true']],
      ["--entrypoint '' runs CMD alone", { entrypoint: '', cmd: ['/bin/other'] }, ['/bin/other']],
    ] as const)('%s', (_name, overrides, argv) => {
      expect(resolveProcess(image, user, overrides).argv).toEqual(argv);
    });

    it('throws RUN_NO_COMMAND when nothing is left to run', () => {
      expect(() => resolveProcess({}, user)).toThrow(expect.objectContaining({ code: 'RUN_NO_COMMAND' }));
      expect(() => resolveProcess(image, user, { entrypoint: '' })).toThrow(
        expect.objectContaining({ code: 'RUN_NO_COMMAND' }),
      );
    });
  });

  describe('env', () => {
    it('adds HOSTNAME and HOME, keeps the image PATH, lets -e win, sorts by name', () => {
      const p = resolveProcess(image, user, {
        env: ['A=2', 'B=x=y', 'FROMHOST', 'MISSING'],
        hostEnv: { FROMHOST: 'h' },
      });
      expect(p.env).toEqual([
        ['A', '2'],
        ['B', 'x=y'],
        ['FROMHOST', 'h'],
        ['HOME', '/home/app'],
        ['HOSTNAME', 'pare'],
        ['PATH', '/bin'],
      ]);
    });
    it('defaults PATH like docker when the image has none', () => {
      expect(new Map(resolveProcess({ Cmd: ['x'] }, user).env).get('PATH')).toBe(DEFAULT_PATH);
    });
    it('rejects an empty name', () => {
      expect(() => resolveProcess(image, user, { env: ['=v'] })).toThrow(
        expect.objectContaining({ code: 'RUN_ENV_INVALID' }),
      );
    });
  });

  it('takes WorkingDir from --workdir, else the image, else /', () => {
    expect(resolveProcess(image, user).cwd).toBe('/srv');
    expect(resolveProcess(image, user, { workdir: '/tmp/' }).cwd).toBe('/tmp');
    expect(resolveProcess({ Cmd: ['x'] }, user).cwd).toBe('/');
    expect(() => resolveProcess(image, user, { workdir: 'rel' })).toThrow(
      expect.objectContaining({ code: 'RUN_WORKDIR_INVALID' }),
    );
  });
});

describe('parseVolume', () => {
  it.each([
    ['/h:/c', { host: '/h', container: '/c', readOnly: false }],
    ['/h:/c:ro', { host: '/h', container: '/c', readOnly: true }],
    ['/h:/c/./d/:rw', { host: '/h', container: '/c/d', readOnly: false }],
    ['./rel:/c', { host: '/work/rel', container: '/c', readOnly: false }],
  ])('parses %j', (s, want) => {
    expect(parseVolume(s, '/work')).toEqual(want);
  });

  it.each([
    ['/h', 'want HOST:CONTAINER'],
    ['/h:/c:rx', 'unknown option'],
    ['named:/c', 'named volumes'],
    ['/h:rel', 'must be absolute'],
    ['/h:/a/../b', '".."'],
    ['/h:/', 'managed by the sandbox'],
    ['/h:/proc/sys', 'managed by the sandbox'],
    ['/h:/dev', 'managed by the sandbox'],
  ])('rejects %j', (s, why) => {
    expect(() => parseVolume(s, '/work')).toThrow(
      expect.objectContaining({ code: 'RUN_VOLUME_INVALID', message: expect.stringContaining(why) }),
    );
  });
});

describe('parseSize', () => {
  it.each([
    ['1048576', 1048576],
    ['64m', 64 * 1024 * 1024],
    ['64MiB', 64 * 1024 * 1024],
    ['1g', 1024 ** 3],
    ['512k', 512 * 1024],
  ])('%s → %i bytes', (s, n) => {
    expect(parseSize(s)).toBe(n);
  });
  it.each(['', 'big', '-1m', '1t', '100', '65g'])('rejects %j', (s) => {
    expect(() => parseSize(s)).toThrow(expect.objectContaining({ code: 'RUN_SIZE_INVALID' }));
  });
});
