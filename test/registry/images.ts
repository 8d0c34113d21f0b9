import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { sha256 } from '../../src/digest/index.ts';
import {
  buildImage,
  buildIndex,
  type Image,
  type ImageIndex,
  type Layer,
  layerFromBytes,
  MediaType,
  type Platform,
} from '../../src/oci/index.ts';

/**
 * Small random images for registry tests (after ggcr's `random` package): real gzip'd tars with one file each, so
 * skopeo and crane accept them, and random content, so every call makes new digests.
 */

/** Returns a one-member ustar archive (header, data padded to 512, two zero blocks). */
export function tarOneFile(name: string, data: Uint8Array): Uint8Array {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([h, data, Buffer.alloc(pad), Buffer.alloc(1024)]);
}

/** Returns a gzip'd layer holding one random file of `size` bytes. */
export function randomLayer(size = 1024, name = `file-${randomBytes(4).toString('hex')}`): Layer {
  const tar = tarOneFile(name, randomBytes(size));
  return layerFromBytes(gzipSync(tar), MediaType.OCI_LAYER_GZIP, sha256(tar));
}

/** Returns an image of `layers` random layers for `platform`. */
export function randomImage(options: { layers?: number; size?: number; platform?: Platform } = {}): Image {
  const layers = Array.from({ length: options.layers ?? 2 }, () => randomLayer(options.size ?? 1024));
  return buildImage({
    layers,
    platform: options.platform ?? { os: 'linux', architecture: 'amd64' },
    created: '2024-01-01T00:00:00Z',
  });
}

/** Returns an index of one random image per platform. */
export function randomIndex(
  platforms: Platform[] = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ],
): ImageIndex {
  return buildIndex(platforms.map((platform) => ({ image: randomImage({ platform }), platform })));
}
