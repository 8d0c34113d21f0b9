import { describe, expect, it } from 'vitest';
import { sha256 } from '../digest/index.ts';
import { parseConfig, parseIndex, parseManifest } from './parse.ts';

const d = sha256(new Uint8Array([1]));
const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: 1 };
const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const manifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { ...desc, mediaType: 'application/vnd.oci.image.config.v1+json' },
  layers: [desc],
  'x-unknown': { kept: true },
};

describe('parse', () => {
  it('keeps unknown fields and freezes the result', () => {
    const m = parseManifest(bytes(manifest));
    expect(m).toEqual(manifest);
    expect(Object.isFrozen(m.layers[0])).toBe(true);
  });

  it.each([
    [{ ...manifest, schemaVersion: 1 }, 'schemaVersion', 'expected 2'],
    [{ ...manifest, layers: [{ ...desc, size: -1 }] }, 'layers.0.size', 'non-negative integer'],
    [{ ...manifest, layers: [{ ...desc, size: 2 ** 53 }] }, 'layers.0.size', 'non-negative integer'],
    [{ ...manifest, layers: [{ ...desc, digest: 'sha256:abc' }] }, 'layers.0.digest', 'canonical'],
    [{ ...manifest, config: undefined }, 'config', 'expected object, received undefined'],
    [{ ...manifest, annotations: { a: 1 } }, 'annotations.a', 'expected string, received number'],
    [{ ...manifest, layers: {} }, 'layers', 'expected array, received object'],
  ])('names the bad field of a manifest (%#)', (m, field, message) => {
    expect(() => parseManifest(bytes(m), 'sha256:x')).toThrow(
      expect.objectContaining({
        code: 'OCI_MANIFEST_INVALID',
        message: expect.stringMatching(new RegExp(`field "${field}": .*${message}`)),
      }),
    );
  });

  it('checks indexes and configs', () => {
    expect(parseIndex(bytes({ schemaVersion: 2, manifests: [desc] })).manifests).toHaveLength(1);
    expect(() =>
      parseIndex(bytes({ schemaVersion: 2, manifests: [{ ...desc, platform: { os: 'linux' } }] })),
    ).toThrow(/field "manifests.0.platform.architecture"/);
    const config = {
      architecture: 'amd64',
      os: 'linux',
      config: null,
      rootfs: { type: 'layers', diff_ids: [d] },
    };
    expect(parseConfig(bytes(config)).rootfs.diff_ids).toEqual([d]);
    expect(() => parseConfig(bytes({ ...config, rootfs: { type: 'x', diff_ids: [] } }))).toThrow(
      expect.objectContaining({
        code: 'OCI_CONFIG_INVALID',
        message: expect.stringMatching(/field "rootfs.type"/),
      }),
    );
    expect(() => parseConfig(bytes({ ...config, config: { Env: ['A=1', 2] } }))).toThrow(
      /field "config.Env.1"/,
    );
    expect(() => parseConfig(new Uint8Array([0xff]))).toThrow(/not valid UTF-8 JSON/);
  });
});
