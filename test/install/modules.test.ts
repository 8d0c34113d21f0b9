import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NODE, PARE, pare } from '../helpers/cli.ts';
import { loadedModules } from '../helpers/loaded-modules.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * Start-up cost is mostly modules loaded (issue 16 §4): a command loads its own code and nothing another command
 * needs. Budgets are counts of file modules (sources and dependencies) as the loader reports them; raise one only with
 * a reason in the commit message.
 */

const BUDGETS: readonly [args: readonly string[], files: number, never: readonly string[]][] = [
  // bin, cli/main.ts, errors.ts, commands/index.ts and commander
  [['--version'], 15, ['/src/oci/', '/src/layout/']],
  // + the layout reader, the OCI model and openReference (src/cli/reference.ts), which loads the registry and attest
  // modules only for a registry reference or a signature store (49 files; 45 before the one reference model); no
  // registry client, Debian, build, SBOM or schema libraries; +1 since the reference grammar and opener moved to
  // src/transport/open.ts, shared with base: in pare.yaml (56)
  [['inspect', 'IMAGE'], 56, ['/src/registry/', '/src/attest/', '/src/debian/', '/src/build/', '/src/sbom/']],
];
const HEAVY = [
  '/node_modules/zod/',
  '/node_modules/yaml/',
  '/node_modules/undici/',
  '/node_modules/openpgp/',
  '/node_modules/@cyclonedx/',
];

describe('modules loaded at start-up', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir('pare-modules-');
    const built = pare(['build', resolve('test/fixtures/build/files-only'), '-o', join(work, 'out')]);
    expect(built.code, built.stderr).toBe(0);
  });

  it.each(BUDGETS)('pare %j stays within its budget', (args, budget, never) => {
    const argv = args.map((a) => (a === 'IMAGE' ? `oci:${join(work, 'out')}:hello` : a));
    const r = loadedModules(NODE, [], PARE, argv, { cwd: work });
    expect(r.status).toBe(0);
    expect(r.files.length).toBeGreaterThan(3);
    const forbidden = r.files.filter((f) => [...HEAVY, ...never].some((n) => f.includes(n)));
    expect(forbidden).toEqual([]);
    expect(r.files.length, r.files.join('\n')).toBeLessThanOrEqual(budget);
  });
});
