import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dumpTree, readHostDir } from '../../src/fstree/index.ts';
import { collect, tarFromTree, tarToTree } from '../../src/tar/index.ts';
import { arbTree, canonicalHardlinks } from '../helpers/arbitraries.ts';
import { isRoot } from '../helpers/peers.ts';

// GNU tar is part of every Debian system; owners can only be restored as root, so without root they are not compared.
const root = isRoot();
if (!root) console.warn('[partial] not root: owners are not compared after extraction with GNU tar');

async function* file(path: string): AsyncGenerator<Uint8Array> {
  const { createReadStream } = await import('node:fs');
  for await (const c of createReadStream(path)) yield c as Buffer;
}

describe('tarFromTree with GNU tar', () => {
  it('extracts with `tar -x` to the same tree (modes, owners, links, long and UTF-8 names)', async () => {
    await fc.assert(
      fc.asyncProperty(arbTree(), async (tree) => {
        const dir = mkdtempSync(join(tmpdir(), 'pare-tar-'));
        try {
          const tarFile = join(dir, 'a.tar');
          writeFileSync(tarFile, await collect(tarFromTree(tree)));
          const out = join(dir, 'x');
          execFileSync('mkdir', [out]);
          execFileSync(
            'tar',
            [
              '-x',
              '-f',
              tarFile,
              '-C',
              out,
              '--numeric-owner',
              '-p',
              '--warning=no-timestamp',
              ...(root ? ['--same-owner'] : []),
            ],
            {
              env: { ...process.env, LC_ALL: 'C.UTF-8' },
            },
          );
          const back = await readHostDir(out, { keepOwners: root });
          const want = canonicalHardlinks(tree);
          const strip = (d: Record<string, string>) =>
            root ? d : Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.replace(/ \d+:\d+/, '')]));
          expect(strip(await dumpTree(back, { mtime: true }))).toEqual(
            strip(await dumpTree(want, { mtime: true })),
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 25 },
    );
  });

  it('reads what `tar -c --format=pax` wrote to the same tree as the directory', async () => {
    await fc.assert(
      fc.asyncProperty(arbTree(), async (tree) => {
        const dir = mkdtempSync(join(tmpdir(), 'pare-tar-'));
        try {
          const src = join(dir, 'src');
          execFileSync('mkdir', [src]);
          const tarFile = join(dir, 'a.tar');
          writeFileSync(tarFile, await collect(tarFromTree(tree)));
          execFileSync('tar', [
            '-x',
            '-f',
            tarFile,
            '-C',
            src,
            '--numeric-owner',
            '-p',
            '--warning=no-timestamp',
          ]);
          const expected = await readHostDir(src, { keepOwners: true });
          const gnu = join(dir, 'gnu.tar');
          execFileSync(
            'tar',
            ['-c', '-f', gnu, '--format=pax', '--sort=name', '--numeric-owner', '-C', src, '.'],
            {
              env: { ...process.env, LC_ALL: 'C.UTF-8' },
            },
          );
          const back = await tarToTree(file(gnu));
          expect(await dumpTree(back, { mtime: true })).toEqual(await dumpTree(expected, { mtime: true }));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 15 },
    );
  });
});
