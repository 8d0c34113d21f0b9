import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pare } from '../../test/helpers/cli.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { loadConfig } from '../config/index.ts';
import { craftElf } from '../elf/index.ts';
import { bufferContent, dirEntry, fileEntry, type Tree, TreeBuilder } from '../fstree/index.ts';
import { selectImage } from '../oci/index.ts';
import { formatWhyKept } from '../slice/index.ts';
import { build } from './build.ts';

/**
 * The build pipeline over a crafted packages tree (`packagesRoot`), so slicing runs without an archive. Trees are
 * compared as path lists; a real Debian build is exercised in test/build.
 */

const EPOCH = 0;

/** A packages tree: an interpreter (a program) in /usr/bin, data under /usr/local/share and /usr/share that nothing needs. */
function packages(): Tree {
  const file = (text: string, mode = 0o644) => fileEntry(bufferContent(text), { mode });
  return (
    new TreeBuilder({ mtime: EPOCH })
      .put('/etc', dirEntry({ mode: 0o755 }))
      .put('/etc/passwd', file('root:x:0:0:root:/root:/sbin/nologin\n'))
      .put('/etc/group', file('root:x:0:\n'))
      // A static x86-64 program (crafted): the image must be able to run its entrypoint (check.ts).
      .put(
        '/usr/bin/interp',
        fileEntry(bufferContent(craftElf({ machine: 62, type: 'EXEC' })), { mode: 0o755 }),
      )
      .put(
        '/usr/bin/other',
        fileEntry(bufferContent(craftElf({ machine: 62, type: 'EXEC' })), { mode: 0o755 }),
      )
      .put('/usr/local/share/big/blob', file('x'.repeat(4096)))
      .put('/usr/local/lib/unrelated.so', file('y'.repeat(4096)))
      .put('/usr/share/doc/unused/README', file('z'))
      .build()
  );
}

async function project(dir: string, yaml: string, files: Record<string, string> = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'pare.yaml'), yaml);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text, { mode: 0o755 });
  }
  return loadConfig(dir);
}

describe('build', () => {
  const dir = tempDir();

  describe('when a files: destination is under /usr', () => {
    it('keeps the user file and its closure, and the parents only as bare directories', async () => {
      // note: before the fix the parents /usr, /usr/local and /usr/local/bin became keep globs, so the whole /usr
      // subtree (here the unused blob, library and README) was kept and slicing did nothing.
      const loaded = await project(
        join(dir, 'usr'),
        'packages: [interp]\nfiles:\n  - src: tool\n    dest: /usr/local/bin/tool\nimage:\n  entrypoint: [/usr/local/bin/tool]\n',
        { tool: '#!/usr/bin/interp\n' },
      );
      const r = await build(loaded, {
        dryRun: true,
        layerCache: false,
        packagesRoot: async () => packages(),
      });
      const tree = (await r.tree('linux/amd64'))!;
      const paths = tree.paths();
      expect(paths).toContain('/usr/local/bin/tool');
      expect(paths).toContain('/usr/bin/interp');
      expect(paths).not.toContain('/usr/local/share/big/blob');
      expect(paths).not.toContain('/usr/local/lib/unrelated.so');
      expect(paths).not.toContain('/usr/share/doc/unused/README');
      const report = r.slices.get('linux/amd64')!;
      expect(report.roots.filter((x) => x.kind === 'keep')).toEqual([]);
      expect(report.roots).toContainEqual({ kind: 'files', spec: 'files:', paths: ['/usr/local/bin/tool'] });
      expect(formatWhyKept(report, '/usr/local')).toContain('directory of /usr/local/bin');
      expect(formatWhyKept(report, '/usr/bin/interp')).toContain('#! interpreter of /usr/local/bin/tool');
    });

    it('keeps a file whose name looks like a glob as exactly that file', async () => {
      const loaded = await project(
        join(dir, 'glob'),
        'packages: [interp]\nfiles:\n  - content: "data"\n    dest: "/usr/local/share/[b]ig"\nimage:\n  entrypoint: [/usr/bin/interp]\n',
      );
      const r = await build(loaded, {
        dryRun: true,
        layerCache: false,
        packagesRoot: async () => packages(),
      });
      const paths = (await r.tree('linux/amd64'))!.paths();
      expect(paths).toContain('/usr/local/share/[b]ig');
      expect(paths).not.toContain('/usr/local/share/big/blob');
    });
  });
});

/** Returns the digest of the last (app) layer of each platform's image. */
async function appLayers(r: Awaited<ReturnType<typeof build>>, archs: string[]) {
  return Promise.all(
    archs.map(
      async (architecture) =>
        (await (await selectImage(r.artifact, { os: 'linux', architecture })).manifest()).layers.at(-1)!
          .digest,
    ),
  );
}

describe('build with per-platform files', () => {
  const dir = tempDir();
  const YAML = `name: multi
platforms: [linux/amd64, linux/arm64, linux/arm/v7]
files:
  - { src: "dist/{os}-{arch}{variant}/app", dest: /app/app, platforms: [linux/arm/v7] }
  - { src: "dist/{os}-{arch}/app", dest: /app/app, platforms: [linux/amd64, linux/arm64] }
  - { content: "all\\n", dest: /etc/motd }
  - { content: "arm64 only\\n", dest: /etc/arm64, platforms: [linux/arm64] }
`;
  const dist = {
    'dist/linux-amd64/app': 'x86-64 build\n',
    'dist/linux-arm64/app': 'aarch64 build\n',
    'dist/linux-armv7/app': 'armv7 build\n',
  };

  it('expands {os}, {arch}, {variant} with OCI names and limits entries to their platforms', async () => {
    const loaded = await project(join(dir, 'ok'), YAML, dist);
    const r = await build(loaded, { output: join(dir, 'ok-out'), layerCache: false });
    const read = async (platform: string, path: string) => {
      const t = (await r.tree(platform))!;
      return t.has(path) ? new TextDecoder().decode(await t.readFile(path)) : undefined;
    };
    expect(await read('linux/amd64', '/app/app')).toBe('x86-64 build\n');
    expect(await read('linux/arm64', '/app/app')).toBe('aarch64 build\n');
    expect(await read('linux/arm/v7', '/app/app')).toBe('armv7 build\n');
    expect(await read('linux/arm64', '/etc/arm64')).toBe('arm64 only\n');
    expect(await read('linux/amd64', '/etc/arm64')).toBeUndefined();
    expect(await read('linux/arm/v7', '/etc/motd')).toBe('all\n');
    // note: one app layer per platform here; sharing the first platform's would give arm64 the x86-64 build
    expect(new Set(await appLayers(r, ['amd64', 'arm64', 'arm'])).size).toBe(3);
    // The provenance lists every platform's app files, each with the host path it came from.
    const provenance = readFileSync(join(dir, 'ok-out', 'pare', 'latest', 'provenance.json'), 'utf8');
    for (const src of Object.keys(dist)) expect(provenance).toContain(src);
  });

  it('shares one app layer between platforms whose files are the same entries and paths', async () => {
    const loaded = await project(
      join(dir, 'same'),
      'platforms: [linux/amd64, linux/arm64]\nfiles:\n  - { content: "x", dest: /x }\n',
    );
    const r = await build(loaded, { dryRun: true, layerCache: false });
    const layers = await appLayers(r, ['amd64', 'arm64']);
    expect(new Set(layers).size).toBe(1);
    expect(layers).toHaveLength(2);
  });

  it.each([
    [
      'a missing per-platform source',
      'platforms: [linux/amd64, linux/arm64]\nfiles:\n  - { src: "bin/{arch}/app", dest: /app }\n',
      { 'bin/amd64/app': 'x' },
      /:3:12: cannot read source "bin\/\{arch\}\/app" \(.*\/bin\/arm64\/app\): no such file/,
    ],
    [
      '{variant} on a platform without one',
      'platforms: [linux/amd64]\nfiles:\n  - { src: "bin/{variant}", dest: /app }\n',
      {},
      /:3:12: src "bin\/\{variant\}" has \{variant\} but linux\/amd64 has no variant; limit the entry with platforms:/,
    ],
    [
      'an entry for a platform the image does not have',
      'platforms: [linux/amd64]\nfiles:\n  - { content: x, dest: /app, platforms: [linux/arm64] }\n',
      {},
      /:3:43: linux\/arm64 is not one of the image's platforms \(linux\/amd64\)/,
    ],
  ])('refuses %s', async (_what, yaml, files, message) => {
    const loaded = await project(join(dir, `bad-${Math.random().toString(36).slice(2)}`), yaml, files);
    await expect(build(loaded, { dryRun: true, layerCache: false })).rejects.toThrow(
      expect.objectContaining({ message: expect.stringMatching(message) }),
    );
  });
});

describe('build with slice.drop', () => {
  const dir = tempDir();
  const YAML =
    'packages: [interp]\nfiles:\n  - src: tool\n    dest: /usr/local/bin/tool\nimage:\n  entrypoint: [/usr/local/bin/tool]\n';

  it('removes what the closure wants and why-kept names the glob and what wanted it', async () => {
    // The entrypoint is another program: the dropped interpreter is wanted by a files: script the image does not run.
    const loaded = await project(
      join(dir, 'ok'),
      `${YAML.replace('entrypoint: [/usr/local/bin/tool]', 'entrypoint: [/usr/bin/other]')}slice:\n  drop: [/usr/bin/interp]\n`,
      { tool: '#!/usr/bin/interp\n' },
    );
    const r = await build(loaded, { dryRun: true, layerCache: false, packagesRoot: async () => packages() });
    expect((await r.tree('linux/amd64'))!.has('/usr/bin/interp')).toBe(false);
    const report = r.slices.get('linux/amd64')!;
    expect(report.dropped?.['/usr/bin/interp']).toMatchObject({
      glob: '/usr/bin/interp',
      wanted: { why: 'shebang', from: '/usr/local/bin/tool' },
    });
    const file = join(dir, 'slice-report.json');
    writeFileSync(file, JSON.stringify(report));
    const why = pare(['why-kept', '/usr/bin/interp', file]);
    expect(why.stdout).toBe(
      '/usr/bin/interp: dropped by slice.drop "/usr/bin/interp"\n  ← wanted as #! interpreter of /usr/local/bin/tool (#!/usr/bin/interp)\n    ← root (files:)\n',
    );
    expect(why.code).toBe(1);
  });

  it("fails the build (exit 1) when the drop breaks the entrypoint's closure", async () => {
    const loaded = await project(join(dir, 'broken'), `${YAML}slice:\n  drop: [/usr/bin/interp]\n`, {
      tool: '#!/usr/bin/interp\n',
    });
    await expect(
      build(loaded, { dryRun: true, layerCache: false, packagesRoot: async () => packages() }),
    ).rejects.toThrow(
      expect.objectContaining({
        code: 'BUILD_NOT_RUNNABLE',
        message: expect.stringContaining('/usr/local/bin/tool needs the interpreter /usr/bin/interp'),
      }),
    );
  });

  it.each([
    ['in a files-only build', 'slice:\n  drop: [/x]\n', /:2:9: slice.drop needs a sliced build \(packages:/],
    [
      'matching nothing',
      `${YAML}slice:\n  drop: [/opt/**]\n`,
      /:8:10: cannot slice: drop glob "\/opt\/\*\*" matches nothing/,
    ],
    [
      "removing the user's own file",
      `${YAML}slice:\n  drop: [/usr/local/**]\n`,
      /:8:10: cannot slice: "\/usr\/local\/bin\/tool" is a root and drop glob "\/usr\/local\/\*\*" removes it/,
    ],
  ])('refuses a drop %s at its line', async (_what, yaml, message) => {
    const loaded = await project(join(dir, `bad-${Math.random().toString(36).slice(2)}`), yaml, {
      tool: '#!/usr/bin/interp\n',
    });
    await expect(
      build(loaded, { dryRun: true, layerCache: false, packagesRoot: async () => packages() }),
    ).rejects.toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) }),
    );
  });
});

describe('build with base: in the forms every command accepts', () => {
  const dir = tempDir();
  const app = (p: string) => {
    mkdirSync(p, { recursive: true });
    writeFileSync(join(p, 'app'), craftElf({ machine: 62, type: 'EXEC' }), { mode: 0o755 });
  };
  const yaml = (base: string) =>
    `base: ${JSON.stringify(base)}\nplatforms: [linux/amd64]\nfiles:\n  - src: app\n    dest: /app\n    mode: "0755"\nimage:\n  entrypoint: [/app]\n`;

  it('builds on a bare path (a layout directory with :TAG, an archive file), relative to pare.yaml', async () => {
    const a = join(dir, 'a');
    app(a);
    const base = await build(await project(a, yaml('minimal')), {
      output: join(a, 'out'),
      tag: 'b',
      tar: join(a, 'a.tar'),
      layerCache: false,
    });
    const baseLayers = (await (await selectImage(base.artifact)).manifest()).layers.map((l) => l.digest);
    for (const [ref, name] of [
      ['../a/out:b', 'oci:../a/out:b'],
      ['../a/a.tar', 'oci-archive:../a/a.tar'],
      [`oci:${join(a, 'out')}:b`, `oci:${join(a, 'out')}:b`],
    ] as const) {
      const b = join(dir, `b-${name.replace(/\W+/g, '-')}`);
      app(b);
      // Built from elsewhere: the bare path is taken relative to pare.yaml, not to the current directory.
      const r = await build(await project(b, yaml(ref)), {
        dryRun: true,
        layerCache: false,
      });
      expect(r.baseImage?.digest).toBe(base.digest);
      expect(r.baseImage?.name).toBe(name);
      const layers = (await (await selectImage(r.artifact)).manifest()).layers.map((l) => l.digest);
      expect(layers.slice(0, baseLayers.length)).toEqual(baseLayers);
    }
  });

  it.each([
    ['debian:bookworm', 'not a registry reference'],
    ['./missing', 'no such file or directory'],
  ])('refuses %s at its line and column, saying why (exit 2)', async (ref, why) => {
    const p = join(dir, `bad-${ref.replace(/\W+/g, '')}`);
    app(p);
    await expect(build(await project(p, yaml(ref)), { dryRun: true, layerCache: false })).rejects.toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(new RegExp(`pare.yaml:1:7: .*${why}`)),
      }),
    );
  });
});
