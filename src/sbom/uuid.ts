import { createHash } from 'node:crypto';

/**
 * Name-based UUIDs (RFC 9562 §5.5, version 5: SHA-1 of namespace ‖ name), so an SBOM's serial number and namespace
 * follow from its content and two runs over the same image print the same bytes.
 */

/** pare's own UUID namespace for SBOM ids (random once, fixed forever). */
export const PARE_SBOM_NAMESPACE = '6a1f3c2e-8d4b-4f0a-9b7e-2c5d1e9f3a70';

/** Returns the version-5 UUID of `name` in `namespace`, lowercase with dashes. */
export function uuidV5(name: string, namespace = PARE_SBOM_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
