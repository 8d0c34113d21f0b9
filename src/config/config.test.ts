import { describe, expect, it } from 'vitest';
import { parseConfigText } from './index.ts';

describe('parseConfigText', () => {
  it('fills defaults', () => {
    const c = parseConfigText('name: hello\n');
    expect(c.platforms).toEqual(['linux/amd64']);
    expect(c.base).toBe('minimal');
    expect(c.files).toEqual([]);
  });
  it('accepts an image base by transport', () => {
    for (const b of [
      'oci:img:v1',
      'oci-archive:base.tar',
      'docker://127.0.0.1:5000/app@sha256:' + '0'.repeat(64),
    ])
      expect(parseConfigText(`base: "${b}"\n`).base).toBe(b);
  });
  it('accepts octal strings, names, decimal ids and plainly written numbers', () => {
    const c = parseConfigText(
      'files:\n  - { dest: /a, content: x, mode: "755", owner: "app:1000" }\n  - { dest: /b, dir: true, mode: "0700", owner: 65532 }\nimage:\n  user: "0:0"\n  ports: [8080, "53/udp"]\n  env: { N: 3, B: false, S: "0755" }\nepoch: 1700000000\n',
    );
    expect(c.files.map((f) => [f.mode, f.owner])).toEqual([
      ['755', 'app:1000'],
      ['0700', 65532],
    ]);
    expect(c.image.env).toEqual({ N: 3, B: false, S: '0755' });
    expect(c.epoch).toBe(1700000000);
  });
  describe('when the config is wrong', () => {
    it.each([
      ['name: hello\nfiels: []\n', /pare.yaml:2:1: unknown key "fiels"/],
      ['image:\n  user: root\n  entrypiont: [x]\n', /pare.yaml:3:3: unknown key "entrypiont" in image/],
      [
        'files:\n  - dest: /a\n    src: a\n    content: b\n',
        /pare.yaml:2:5: files.0: give exactly one of src/,
      ],
      ['platforms: [windows/amd64]\n', /pare.yaml:1:13: platforms.0: want a platform/],
      // base: a preset or an image reference (parsed, and a bad one refused at 1:7, by the build: build.test.ts)
      ['base: ""\n', /pare.yaml:1:7: base: want minimal, scratch, or an image/],
      ['base: 3\n', /pare.yaml:1:7: base: want minimal, scratch, or an image/],
      ['image:\n  ports: [99999]\n', /pare.yaml:2:11: image.ports.0/],
      ['name: [unclosed\n', /pare.yaml:\d+:\d+: /],
      ['a: 1\na: 2\n', /pare.yaml:2:1: .*(unique|Map keys)/i],
      // modes: only octal strings; a YAML number is decimal and never reinterpreted
      [
        'files:\n  - dest: /a\n    content: x\n    mode: 755\n',
        /4:11: files.0.mode: .*755 is decimal, mode 0o1363.*"0755"/,
      ],
      [
        'files:\n  - dest: /a\n    content: x\n    mode: 0755\n',
        /4:11: files.0.mode: .*755 is decimal.*"0755"/,
      ],
      [
        'files:\n  - dest: /a\n    content: x\n    mode: 0o755\n',
        /4:11: files.0.mode: .*493 is decimal.*"0755"/,
      ],
      ['files:\n  - dest: /a\n    content: x\n    mode: "0955"\n', /files.0.mode: want an octal mode/],
      // owners: decimal ids in range or names, nothing coerced
      [
        'files:\n  - dest: /a\n    dir: true\n    owner: -1\n',
        /4:12: files.0.owner: want a uid as a whole number from 0 to 4294967294/,
      ],
      [
        'files:\n  - dest: /a\n    dir: true\n    owner: 1.5\n',
        /files.0.owner: want a uid as a whole number/,
      ],
      ['files:\n  - dest: /a\n    dir: true\n    owner: 4294967295\n', /files.0.owner: want a uid/],
      [
        'files:\n  - dest: /a\n    dir: true\n    owner: "01000"\n',
        /files.0.owner: want uid\[:gid\].*no leading zero/,
      ],
      ['files:\n  - dest: /a\n    dir: true\n    owner: "1:2:3"\n', /files.0.owner: want uid\[:gid\]/],
      [
        'files:\n  - dest: /a\n    dir: true\n    owner: "1:4294967295"\n',
        /files.0.owner: ids go up to 4294967294/,
      ],
      [
        'files:\n  - dest: /a\n    dir: true\n    owner: 0755\n',
        /4:12: files.0.owner: 0755 is read as the number 755; write 755, or quote it/,
      ],
      ['files:\n  - dest: /a\n    dir: true\n    owner: 1.0\n', /files.0.owner: 1.0 is read as the number 1/],
      ['image:\n  user: "-5"\n', /2:9: image.user: want uid\[:gid\]/],
      ['image:\n  user: true\n', /image.user: want a uid: a number or a name/],
      // other numbers
      ['image:\n  ports: ["99999/tcp"]\n', /image.ports.0: want a port from 1 to 65535/],
      ['image:\n  ports: [0]\n', /image.ports.0: want a port/],
      ['image:\n  ports: [0x50]\n', /image.ports.0: 0x50 is read as the number 80/],
      ['epoch: -1\n', /1:8: epoch: want whole seconds since 1970 from 0 to 8589934591/],
      ['epoch: 1.5\n', /epoch: want whole seconds/],
      ['epoch: 8589934592\n', /epoch: want whole seconds/],
      ['epoch: 1e9\n', /epoch: 1e9 is read as the number 1000000000/],
      [
        'image:\n  env:\n    UMASK: 0022\n',
        /3:12: image.env.UMASK: 0022 is read as the number 22; .*quote it \("0022"\)/,
      ],
      ['image:\n  env:\n    DEBUG: True\n', /image.env.DEBUG: True is read as the boolean true/],
      [
        'files:\n  - dest: /a\n    symlink: b\n    mode: "0755"\n',
        /4:11: files.0.mode: a symlink has no mode of its own/,
      ],
      // per-platform sources
      [
        'files:\n  - { src: "dist/{platform}/app", dest: /app }\n',
        /2:12: files.0.src: unknown placeholder "\{platform\}"; src can hold \{arch\}, \{os\} and \{variant\}/,
      ],
      [
        'files:\n  - { src: "dist/{arch/app", dest: /app }\n',
        /files.0.src: unknown placeholder "\{arch\/app"/,
      ],
      [
        'files:\n  - { content: x, dest: /app, platforms: [arm64] }\n',
        /files.0.platforms.0: want a platform/,
      ],
      ['files:\n  - { content: x, dest: /app, platforms: [] }\n', /files.0.platforms: /],
      [
        'image:\n  stopSignal: "0"\n',
        /image.stopSignal: want a signal name such as SIGTERM, or a number from 1 to 64/,
      ],
      ['image:\n  stopSignal: "99"\n', /image.stopSignal: want a signal/],
      ['image:\n  stopSignal: 15\n', /image.stopSignal: want a signal/],
      // paths
      ['image:\n  workdir: app\n', /image.workdir: want an absolute path/],
      ['image:\n  workdir: /app/../etc\n', /image.workdir: want a path without "." or ".." segments/],
      ['image:\n  volumes: [data]\n', /image.volumes.0: want an absolute path/],
    ])('%j → %s', (text, re) => {
      expect(() => parseConfigText(text)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(re) }),
      );
    });
  });
});
