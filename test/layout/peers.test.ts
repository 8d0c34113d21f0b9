import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferContent, dumpTree, readHostDir, type Tree, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout, readArchive, writeArchive } from '../../src/layout/index.ts';
import { buildImage, buildIndex, imageToTree, layerFromTree, validateImage } from '../../src/oci/index.ts';
import { collect } from '../../src/tar/index.ts';
import { canonicalHardlinks } from '../helpers/arbitraries.ts';
import { isRoot, peersOrSkip, runPeer } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

const peers = peersOrSkip('umoci', 'skopeo', 'crane');
const platform = { os: 'linux', architecture: 'amd64' };

/** A tree with every kind of entry the issue names: modes, owners, setuid, symlinks, hardlinks, long and UTF-8 names. */
function sampleTree(): Tree {
  const f = (data: string, mode = 0o644, uid = 0, gid = 0) => ({
    kind: 'file' as const,
    mode,
    uid,
    gid,
    mtime: 1_700_000_000,
    content: bufferContent(data),
  });
  return (
    new TreeBuilder({ mtime: 1_700_000_000 })
      .put('/usr/bin/tool', f('#!/bin/true\n', 0o4755))
      .put('/usr/bin/sgid', f('x', 0o2711, 0, 5))
      .put('/usr/bin/hard', {
        kind: 'hardlink',
        mode: 0o4755,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        target: '/usr/bin/tool',
      })
      .put('/home/nonroot', { kind: 'dir', mode: 0o700, uid: 65532, gid: 65532, mtime: 1_700_000_000 })
      .put('/home/nonroot/.profile', f('export A=1\n', 0o600, 65532, 65532))
      .put('/tmp', { kind: 'dir', mode: 0o1777, uid: 0, gid: 0, mtime: 1_700_000_000 })
      .put('/lib', { kind: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1_700_000_000, target: 'usr/lib' })
      .put('/usr/lib/libx.so.1', f('ELF'))
      .put('/usr/lib/libx.so', {
        kind: 'symlink',
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        target: 'libx.so.1',
      })
      .put(`/srv/${'deep/'.repeat(30)}file-${'n'.repeat(120)}`, f('long'))
      .put('/srv/ünïcødé-日本語.txt', f('utf8'))
      // Over 3 MiB, so the layer is several parallel-compressed blocks (gzip) and frames (zstd) joined as one stream.
      .put('/srv/big.bin', {
        ...f(''),
        content: bufferContent(
          new Uint8Array(3 * (1 << 20) + 4321).map((_, i) => ((i * 2654435761) >>> 27) + (i >> 12)),
        ),
      })
      .build()
  );
}

async function built(tree: Tree) {
  return buildImage({
    layers: [layerFromTree(tree)],
    platform,
    created: '2023-11-14T22:13:20Z',
    config: { User: '65532', Cmd: ['/usr/bin/tool'] },
  });
}

describe.skipIf(peers.skip)('OCI layout output, read by real peers', () => {
  const dir = tempDir();
  const layoutDir = join(dir, 'layout');
  const tree = sampleTree();

  it('umoci unpack --rootless reproduces the tree (modes, links, names); as root, owners too', async () => {
    const img = await built(tree);
    const layout = await OciLayout.create(layoutDir);
    await layout.writeArtifact({ kind: 'image', image: img }, { tag: 'v1' });
    expect(await layout.verify()).toEqual([]);
    const want = await dumpTree(canonicalHardlinks(tree));
    const noOwners = (d: Record<string, string>) =>
      Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.replace(/ \d+:\d+/, '')]));
    const rootless = join(dir, 'bundle-rootless');
    runPeer(peers.paths.umoci!, ['unpack', '--rootless', '--image', `${layoutDir}:v1`, rootless]);
    expect(noOwners(await dumpTree(await readHostDir(join(rootless, 'rootfs'))))).toEqual(noOwners(want));
    if (isRoot()) {
      const full = join(dir, 'bundle-root');
      runPeer(peers.paths.umoci!, ['unpack', '--image', `${layoutDir}:v1`, full]);
      expect(await dumpTree(await readHostDir(join(full, 'rootfs'), { keepOwners: true }))).toEqual(want);
    }
  });

  it.each(['gzip', 'zstd'] as const)(
    'GNU tar lists a %s layer of several blocks whole',
    async (compression) => {
      const file = join(dir, `layer.tar.${compression}`);
      writeFileSync(file, await collect(layerFromTree(tree, { compression }).compressed()));
      const listed = execFileSync(
        'tar',
        [compression === 'gzip' ? '-tvzf' : '--zstd', ...(compression === 'zstd' ? ['-tvf'] : []), file],
        {
          encoding: 'utf8',
        },
      );
      expect(listed).toMatch(new RegExp(`${3 * (1 << 20) + 4321} .*srv/big\\.bin`));
    },
  );

  it('skopeo inspects the layout and copies it to a layout with the same digest', async () => {
    const img = await built(tree);
    const out = JSON.parse(runPeer(peers.paths.skopeo!, ['inspect', `oci:${layoutDir}:v1`])) as {
      Digest: string;
      Layers: string[];
    };
    expect(out.Digest).toBe(await img.digest());
    runPeer(peers.paths.skopeo!, [
      'copy',
      '--preserve-digests',
      `oci:${layoutDir}:v1`,
      `oci:${join(dir, 'copy')}:v2`,
    ]);
    const again = await (await OciLayout.open(join(dir, 'copy'))).readArtifact('v2');
    expect(again.kind === 'image' && (await again.image.digest())).toBe(await img.digest());
  });

  it('writes one tar that skopeo reads as oci-archive and docker-archive and crane validates', async () => {
    const img = await built(tree);
    const file = join(dir, 'image.tar');
    await writeArchive(file, { kind: 'image', image: img }, { tag: 'v1', repoTag: 'pare/sample:v1' });
    const asOci = JSON.parse(runPeer(peers.paths.skopeo!, ['inspect', `oci-archive:${file}:v1`])) as {
      Digest: string;
    };
    expect(asOci.Digest).toBe(await img.digest());
    const asDocker = JSON.parse(
      runPeer(peers.paths.skopeo!, ['inspect', '--config', `docker-archive:${file}`]),
    ) as { rootfs: { diff_ids: string[] } };
    expect(asDocker.rootfs.diff_ids).toEqual((await img.config()).rootfs.diff_ids);
    runPeer(peers.paths.crane!, ['validate', '--tarball', file]);
    // skopeo can unpack it to a layout, and we read that back to the same tree
    runPeer(peers.paths.skopeo!, ['copy', `docker-archive:${file}`, `oci:${join(dir, 'from-docker')}:x`]);
    const back = await (await OciLayout.open(join(dir, 'from-docker'))).readArtifact('x');
    if (back.kind !== 'image') throw new Error('want image');
    expect(await dumpTree(await imageToTree(back.image))).toEqual(await dumpTree(canonicalHardlinks(tree)));
  });

  it('reads archives skopeo wrote (docker-archive and oci-archive) to the same image content', async () => {
    const img = await built(tree);
    const dockerTar = join(dir, 'skopeo-docker.tar');
    const ociTar = join(dir, 'skopeo-oci.tar');
    runPeer(peers.paths.skopeo!, ['copy', `oci:${layoutDir}:v1`, `docker-archive:${dockerTar}:pare/x:v1`]);
    runPeer(peers.paths.skopeo!, ['copy', `oci:${layoutDir}:v1`, `oci-archive:${ociTar}:v1`]);
    for (const [file, ref] of [
      [dockerTar, undefined],
      [dockerTar, 'pare/x:v1'],
      [ociTar, 'v1'],
    ] as const) {
      const a = await readArchive(file, ref);
      if (a.kind !== 'image') throw new Error('want image');
      expect(await validateImage(a.image)).toEqual([]);
      expect((await a.image.config()).rootfs.diff_ids).toEqual((await img.config()).rootfs.diff_ids);
      expect(await dumpTree(await imageToTree(a.image))).toEqual(await dumpTree(canonicalHardlinks(tree)));
    }
  });

  it('round-trips a multi-platform index through layout and archive', async () => {
    const amd = await built(tree);
    const arm = buildImage({
      layers: [layerFromTree(tree)],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    const idx = buildIndex([
      { image: amd, platform },
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    const layout = await OciLayout.create(join(dir, 'multi'));
    await layout.writeArtifact({ kind: 'index', index: idx }, { tag: 'multi' });
    const raw = JSON.parse(
      runPeer(peers.paths.skopeo!, ['inspect', '--raw', `oci:${join(dir, 'multi')}:multi`]),
    ) as { manifests: unknown[] };
    expect(raw.manifests).toHaveLength(2);
    const file = join(dir, 'multi.tar');
    await writeArchive(file, { kind: 'index', index: idx }, { tag: 'multi' });
    const back = await readArchive(file, 'multi');
    expect(back.kind === 'index' && (await back.index.digest())).toBe(await idx.digest());
    runPeer(peers.paths.crane!, ['validate', '--tarball', file]);
  });
});

describe('readArchive', () => {
  const dir = tempDir();
  it('refuses a file that is no image archive, naming it', async () => {
    const file = join(dir, 'junk.tar');
    execFileSync('tar', ['-cf', file, '-C', dir, '--files-from=/dev/null']);
    await expect(readArchive(file)).rejects.toThrow(
      expect.objectContaining({
        code: 'LAYOUT_ARCHIVE_INVALID',
        message: expect.stringContaining('junk.tar'),
      }),
    );
  });
});
