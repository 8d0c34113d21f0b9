import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { loadConfig } from '../config/index.ts';
import { bufferContent, dirEntry, fileEntry, type Tree, TreeBuilder } from '../fstree/index.ts';
import { formatWhyKept } from '../slice/index.ts';
import { build } from './build.ts';

/**
 * The build pipeline over a crafted packages tree (`packagesRoot`), so slicing runs without an archive. Trees are
 * compared as path lists; a real Debian build is exercised in test/build.
 */

const EPOCH = 0;

/** A packages tree: an interpreter in /usr/bin, data under /usr/local/share and /usr/share that nothing needs. */
function packages(): Tree {
  const file = (text: string, mode = 0o644) => fileEntry(bufferContent(text), { mode });
  return new TreeBuilder({ mtime: EPOCH })
    .put('/etc', dirEntry({ mode: 0o755 }))
    .put('/etc/passwd', file('root:x:0:0:root:/root:/sbin/nologin\n'))
    .put('/etc/group', file('root:x:0:\n'))
    .put('/usr/bin/interp', file('\x7fnot really ELF, but a file the script names\n', 0o755))
    .put('/usr/local/share/big/blob', file('x'.repeat(4096)))
    .put('/usr/local/lib/unrelated.so', file('y'.repeat(4096)))
    .put('/usr/share/doc/unused/README', file('z'))
    .build();
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
