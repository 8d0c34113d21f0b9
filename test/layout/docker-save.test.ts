import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/digest/index.ts';
import { bufferContent, dumpTree, TreeBuilder } from '../../src/fstree/index.ts';
import { readArchive } from '../../src/layout/index.ts';
import { imageToTree, validateImage } from '../../src/oci/index.ts';
import { collect, tarFromTree } from '../../src/tar/index.ts';
import { pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * The docker-save layout of Docker 1.10–24 (what `docker save` still emits on many machines): `<id>/layer.tar`
 * (uncompressed), `<id>/json`, `<id>/VERSION`, a `<config-hex>.json`, `manifest.json` and `repositories`. A layer that
 * appears twice is stored once and the second `<id>/layer.tar` is a symlink to the first.
 */
describe('readArchive on a docker save (1.10–24) archive', () => {
  const dir = tempDir();
  it('reads layers by their <id>/layer.tar paths, following symlinked duplicates', async () => {
    const f = (s: string) => ({
      kind: 'file' as const,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 5,
      content: bufferContent(s),
    });
    const layer1 = await collect(tarFromTree(new TreeBuilder().put('/etc/hello', f('hi\n')).build()));
    const layer2 = await collect(
      tarFromTree(new TreeBuilder().put('/etc/.wh.hello', f('')).put('/etc/bye', f('bye\n')).build()),
    );
    const ids = [sha256(layer1), sha256(layer2), sha256(layer1)];
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: ids },
    });
    const cfgHex = sha256(config).slice(7);
    const id = (i: number) => `${i}${'0'.repeat(63)}`;
    const b = new TreeBuilder({ mtime: 5 })
      .put(`/${id(1)}/layer.tar`, f(''))
      .put(`/${id(1)}/layer.tar`, { ...f(''), content: bufferContent(layer1) })
      .put(`/${id(1)}/json`, f('{}'))
      .put(`/${id(1)}/VERSION`, f('1.0'))
      .put(`/${id(2)}/layer.tar`, { ...f(''), content: bufferContent(layer2) })
      .put(`/${id(3)}/layer.tar`, {
        kind: 'symlink',
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 5,
        target: `../${id(1)}/layer.tar`,
      })
      .put(`/${cfgHex}.json`, f(config))
      .put(
        '/manifest.json',
        f(
          JSON.stringify([
            {
              Config: `${cfgHex}.json`,
              RepoTags: ['example/app:1'],
              Layers: [1, 2, 3].map((i) => `${id(i)}/layer.tar`),
            },
          ]),
        ),
      )
      .put('/repositories', f(JSON.stringify({ 'example/app': { '1': id(3) } })));
    const file = join(dir, 'save.tar');
    writeFileSync(file, await collect(tarFromTree(b.build())));
    const a = await readArchive(file, 'example/app:1');
    if (a.kind !== 'image') throw new Error('want an image');
    expect(await validateImage(a.image)).toEqual([]);
    expect((await a.image.manifest()).layers.map((l) => l.mediaType)).toEqual(
      Array(3).fill('application/vnd.oci.image.layer.v1.tar'),
    );
    expect(await dumpTree(await imageToTree(a.image))).toEqual({
      '/etc': 'dir 0755 0:0',
      '/etc/bye': expect.stringMatching(/^file 0644 0:0 /),
      '/etc/hello': expect.stringMatching(/^file 0644 0:0 /),
    });
  });
  it('pare tags lists its RepoTags, as a bare path, docker-archive: or oci-archive: (which reads a docker save too)', () => {
    const file = join(dir, 'save.tar');
    for (const r of [file, `docker-archive:${file}`, `oci-archive:${file}`])
      expect(pare(['tags', r])).toEqual({ code: 0, stdout: 'example/app:1\n', stderr: '' });
    const notArchive = join(dir, 'plain.tar');
    writeFileSync(notArchive, Buffer.alloc(1024));
    const r = pare(['tags', `docker-archive:${notArchive}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot list the tags of archive "${notArchive}": it has no manifest.json`);
  });
  it('names the tags it has when asked for one it does not', async () => {
    await expect(readArchive(join(dir, 'save.tar'), 'other:2')).rejects.toThrow(
      expect.objectContaining({
        code: 'LAYOUT_REF_NOT_FOUND',
        message: expect.stringContaining('example/app:1'),
      }),
    );
  });
});
