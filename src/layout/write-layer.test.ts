import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { type Digest, sha256 } from '../digest/index.ts';
import { bufferContent, TreeBuilder } from '../fstree/index.ts';
import { type Layer, layerFromTree } from '../oci/index.ts';
import { SPOOL_MEMORY_LIMIT } from '../oci/spool.ts';
import { OciLayout } from './layout.ts';

const root = tempDir('pare-writelayer-');

/** A layer whose stored bytes are `file` on disk, claiming `digest`. */
function fileLayer(file: string, digest: Digest): Layer {
  return {
    digest: async () => digest,
    diffId: async () => digest,
    size: async () => readFileSync(file).length,
    mediaType: async () => 'application/vnd.oci.image.layer.v1.tar',
    async *compressed() {
      yield readFileSync(file);
    },
    uncompressed: () => {
      throw new Error('not read');
    },
    compressedFile: async () => file,
  };
}

describe('OciLayout.writeLayer', () => {
  describe('when a layer packed by pare spilled its bytes to a file', () => {
    it('copies the file into the layout under its digest, the same bytes as streaming them', async () => {
      const d = mkdtempSync(join(root, 'w-'));
      // Incompressible, so the gzip layer is past the spool's memory limit and goes to a file.
      const body = randomBytes(SPOOL_MEMORY_LIMIT + (1 << 20));
      const tree = new TreeBuilder()
        .put('/f', { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: bufferContent(body) })
        .build();
      const layer = layerFromTree(tree, { compression: 'gzip', epoch: 0 });
      const expected = { digest: await layer.digest(), size: await layer.size() };
      expect(await layer.compressedFile?.()).toBeDefined();
      const layout = await OciLayout.create(join(d, 'oci'));
      expect(await layout.writeLayer(layer, expected)).toEqual(expected);
      const parts: Uint8Array[] = [];
      for await (const c of layer.compressed()) parts.push(c);
      const blob = readFileSync(layout.blobPath(expected.digest));
      expect(sha256(blob)).toBe(expected.digest);
      expect(blob.equals(Buffer.concat(parts))).toBe(true);
      expect(readdirSync(join(d, 'oci', 'blobs', 'sha256'))).toEqual([expected.digest.slice(7)]);
    });
  });

  describe("when the file does not hash to the layer's digest", () => {
    it('refuses it with DIGEST_MISMATCH and leaves no blob and no temp file', async () => {
      const d = mkdtempSync(join(root, 'w-'));
      const file = join(d, 'spooled');
      writeFileSync(file, 'not what was hashed');
      const digest = sha256(new TextEncoder().encode('what was hashed'));
      const layout = await OciLayout.create(join(d, 'oci'));
      await expect(layout.writeLayer(fileLayer(file, digest), { digest, size: 19 })).rejects.toThrow(
        expect.objectContaining({ code: 'DIGEST_MISMATCH' }),
      );
      expect(existsSync(layout.blobPath(digest))).toBe(false);
      expect(readdirSync(join(d, 'oci', 'blobs', 'sha256'))).toEqual([]);
    });

    it('refuses a file longer than the descriptor says with SIZE_MISMATCH', async () => {
      const d = mkdtempSync(join(root, 'w-'));
      const file = join(d, 'spooled');
      writeFileSync(file, 'abcdef');
      const digest = sha256(new TextEncoder().encode('abc'));
      const layout = await OciLayout.create(join(d, 'oci'));
      await expect(layout.writeLayer(fileLayer(file, digest), { digest, size: 3 })).rejects.toThrow(
        expect.objectContaining({ code: 'SIZE_MISMATCH' }),
      );
      expect(readdirSync(join(d, 'oci', 'blobs', 'sha256'))).toEqual([]);
    });
  });
});
