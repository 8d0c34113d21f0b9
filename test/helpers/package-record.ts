import type { PackageRecord } from '../../src/debian/index.ts';

/**
 * Every field of a PackageRecord but its paragraph, as a plain object to compare: records of an IndexScanner read some
 * fields through getters, which a spread would skip.
 */
export function recordFields(r: PackageRecord) {
  return {
    name: r.name,
    version: r.version,
    architecture: r.architecture,
    filename: r.filename,
    size: r.size,
    sha256: r.sha256,
    suite: r.suite,
    component: r.component,
    provides: r.provides,
  };
}
