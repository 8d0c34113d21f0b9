/**
 * `pare diff A B` on images pare built (files-only projects, so no network): identical images, a rebuild at another
 * SOURCE_DATE_EPOCH (the first reason is a tar member's mtime), a config-only change, and two builds that differ in
 * files, packages (a dpkg status written as a file), config and the hardening of a gcc-built static program.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { diffImages } from '../../src/audit/index.ts';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { buildImage, type Compression, imageToTree, layerFromTree } from '../../src/oci/index.ts';
import { pare } from '../helpers/cli.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

const STATUS = (pkgs: [string, string][]) =>
  pkgs
    .map(([p, v]) => `Package: ${p}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n`)
    .join('\n');

interface Variant {
  script: string;
  env: string;
  packages: [string, string][];
  motd: boolean;
  extra: boolean;
  gcc: string[];
}

describe('pare diff', () => {
  const dir = tempDir('pare-diff-');
  const gcc = peersOrSkip('gcc');
  const build = (name: string, v: Variant, env: NodeJS.ProcessEnv = {}) => {
    const p = join(dir, name);
    mkdirSync(join(p, 'app'), { recursive: true });
    writeFileSync(join(p, 'app/hello.sh'), v.script, { mode: 0o755 });
    if (v.extra) writeFileSync(join(p, 'app/new.txt'), 'new\n');
    writeFileSync(join(p, 'status'), STATUS(v.packages));
    const files = [
      '  - src: app\n    dest: /app',
      '  - src: status\n    dest: /var/lib/dpkg/status',
      ...(v.motd ? ['  - dest: /etc/motd\n    content: "hi\\n"'] : []),
    ];
    if (!gcc.skip) {
      writeFileSync(join(p, 'm.c'), '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n');
      execFileSync(gcc.paths.gcc!, [...v.gcc, '-O1', '-o', join(p, 'tool'), join(p, 'm.c')]);
      files.push('  - src: tool\n    dest: /usr/local/bin/tool\n    mode: "0755"');
    }
    writeFileSync(
      join(p, 'pare.yaml'),
      `platforms: [linux/amd64]\nfiles:\n${files.join('\n')}\nimage:\n  env:\n    GREETING: ${v.env}\n`,
    );
    const r = pare(['build', p, '-o', join(p, 'out')], { env });
    expect(r.code, r.stderr).toBe(0);
    return `oci:${join(p, 'out')}:latest`;
  };
  const base: Variant = {
    script: '#!/bin/sh\necho hello\n',
    env: 'hello',
    packages: [
      ['libbar', '2'],
      ['libfoo', '1.0-1'],
    ],
    motd: true,
    extra: false,
    gcc: ['-static-pie', '-Wl,-z,relro,-z,now'],
  };
  let a = '';
  beforeAll(() => {
    a = build('a', base);
  }, 120_000);

  it('exits 0 for the same image named two ways', () => {
    const r = pare(['diff', a, a.replace(/^oci:/, '').replace(/:latest$/, '')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('identical: same manifest digest');
  });

  it('names a tar member mtime as the first reason for a rebuild at another SOURCE_DATE_EPOCH', () => {
    const b = build('epoch', base, { SOURCE_DATE_EPOCH: '1700000000' });
    const r = pare(['diff', a, b, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.schema).toBe('pare.diff/v1');
    expect(d.first).toMatchObject({ where: 'layer', layer: 1, field: 'mtime', b: 1_700_000_000 });
    expect(d.first.reason).toMatch(
      /^layer 1 differs \(diff_id sha256:\w+ vs sha256:\w+\): first at \S+, whose mtime is \d+ vs 1700000000$/,
    );
    // Only metadata changed: no file changed content, no package, no hardening.
    expect(d.files.added).toEqual([]);
    expect(
      d.files.changed.every((f: { changes: { key: string }[] }) => f.changes.every((c) => c.key === 'mtime')),
    ).toBe(true);
    expect(d.hardening).toEqual([]);
    expect(d.config.map((c: { key: string }) => c.key)).toContain('created');
  });

  it('says the layers are the same when only the config differs', () => {
    const b = build('env', { ...base, env: 'bonjour' });
    const r = pare(['diff', a, b]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain(
      'FIRST DIFFERENCE the layers are the same; the config differs first at config.Env.GREETING: hello vs bonjour',
    );
    expect(r.stdout).toContain('  ~ config.Env.GREETING: hello -> bonjour\n');
    expect(r.stdout).toMatch(/\n {2}= 1 sha256:/);
  });

  it('lists files, packages, config and hardening that differ', () => {
    const b = build('other', {
      script: '#!/bin/sh\necho hi\n',
      env: 'hi',
      packages: [
        ['libbaz', '3'],
        ['libfoo', '1.1-1'],
      ],
      motd: false,
      extra: true,
      gcc: ['-static', '-no-pie', '-Wl,-z,norelro'],
    });
    const r = pare(['diff', a, b, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const d = JSON.parse(r.stdout);
    expect(d.identical).toBe(false);
    expect(d.files.added.map((f: { path: string }) => f.path)).toEqual(['/app/new.txt']);
    expect(d.files.removed.map((f: { path: string }) => f.path)).toEqual(['/etc/motd']);
    const hello = d.files.changed.find((f: { path: string }) => f.path === '/app/hello.sh');
    expect(hello.changes.map((c: { key: string }) => c.key)).toEqual(['size']);
    expect(d.packages).toEqual({
      added: [{ package: 'libbaz', architecture: 'amd64', version: '3' }],
      removed: [{ package: 'libbar', architecture: 'amd64', version: '2' }],
      changed: [{ package: 'libfoo', architecture: 'amd64', a: '1.0-1', b: '1.1-1', direction: 'upgrade' }],
    });
    expect(d.config).toContainEqual({ key: 'config.Env.GREETING', a: 'hello', b: 'hi' });
    if (!gcc.skip) {
      const tool = d.hardening.find((f: { path: string }) => f.path === '/usr/local/bin/tool');
      expect(tool.changes).toEqual(
        expect.arrayContaining([
          { key: 'relro', a: 'full', b: 'none' },
          { key: 'pie', a: 'pie', b: 'no' },
          { key: 'linkage', a: 'static-pie', b: 'static' },
        ]),
      );
    }
    const t = pare(['diff', a, b]);
    expect(t.stdout).toContain(
      '\nPACKAGES\n  + libbaz 3\n  - libbar 2\n  ~ libfoo 1.0-1 -> 1.1-1 (upgrade)\n',
    );
    expect(t.stdout).toContain('  + /app/new.txt (file, 4 B, 0644, 0:0)\n');
    expect(t.stdout).toContain('  - /etc/motd (file, 3 B, 0644, 0:0)\n');
  });

  it('refuses a reference that does not exist (exit 2)', () => {
    const r = pare(['diff', a, `oci:${join(dir, 'nothing')}:latest`]);
    expect(r.code).toBe(2);
  });

  it('names the first layer that is not the same: a recompressed layer 1 before a changed layer 2', async () => {
    const tree = (s: string) => new TreeBuilder().put('/f', fileEntry(bufferContent(s))).build();
    const open = async (name: string, compression: Compression, second: string) => {
      const image = buildImage({
        layers: [layerFromTree(tree('one'), { compression }), layerFromTree(tree(second))],
        platform: { os: 'linux', architecture: 'amd64' },
        created: '2024-01-01T00:00:00Z',
        config: {},
      });
      const origins = new Map<string, string>();
      return { name, image, tree: await imageToTree(image, { origins }), origins };
    };
    const d = await diffImages(await open('a', 'gzip', 'two'), await open('b', 'zstd', 'TWO'));
    expect(d.layers.map((l) => l.status)).toEqual(['recompressed', 'changed']);
    expect(d.first).toMatchObject({ where: 'layer', layer: 1, field: 'digest' });
    expect(d.first!.reason).toMatch(
      /^layer 1 holds the same tar \(diff_id sha256:\w+\) compressed differently/,
    );
    expect(d.files.changed).toEqual([
      {
        path: '/f',
        changes: [
          { key: 'content', a: expect.stringMatching(/^sha256:/), b: expect.stringMatching(/^sha256:/) },
        ],
      },
    ]);
  });
});
