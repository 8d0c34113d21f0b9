/**
 * The built-in list of glibc's `__*_chk` functions (src/elf/glibc-chk.ts) against the real libc6 of Debian's amd64,
 * i386 and arm64 packages, fetched through pare's own archive client from the mirror of the host apt sources (no host
 * is named here): the list for the package's glibc release must be exactly what checksec would read from that libc.
 * Then each package's own ELF files are audited twice, with its libc.so.6 and without it: the fortify counts of the
 * built-in fallback must equal those of the real libc (before, the root without libc gave 0/0).
 * Skipped with a printed reason when the host has no Debian source or the mirror cannot be reached.
 */
import { describe, expect, it } from 'vitest';
import { auditTree } from '../../src/audit/index.ts';
import { defaultCacheDir, openArchive, readAptSources, readDeb } from '../../src/debian/index.ts';
import { fortifyListOf, glibcFortifyList, openElf } from '../../src/elf/index.ts';
import { peersRequired } from '../helpers/peers.ts';

const suite = (await readAptSources().catch(() => []))
  .filter((e) => e.enabled && e.types.includes('deb'))
  .flatMap((e) => e.suites)
  .find((s) => /^[a-z]+$/.test(s));
const ARCHS = ['amd64', 'i386', 'arm64'];
let archive: Awaited<ReturnType<typeof openArchive>> | undefined;
let skipReason = suite ? '' : 'no Debian release suite in the host apt sources';
if (suite) {
  try {
    archive = await openArchive(
      { suite, security: false, updates: false },
      { cacheDir: defaultCacheDir(), architectures: ARCHS },
    );
  } catch (e) {
    skipReason = `the Debian mirror of the host apt sources cannot be used: ${(e as Error).message}`;
    if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${skipReason}`);
  }
}
if (skipReason) console.warn(`[skip] glibc _chk list against real libc6: ${skipReason}`);

describe.skipIf(!archive)('the built-in glibc _chk list', () => {
  it.each(ARCHS)(
    'equals the list read from the real libc6 of %s, and the audit without libc counts the same',
    async (arch) => {
      const records = await archive!.index(suite!, 'main', arch);
      const libc6 = records.find((r) => r.name === 'libc6' && r.architecture === arch)!;
      expect(libc6, `libc6 in ${suite}/main/${arch}`).toBeDefined();
      const [deb] = await archive!.fetchDebs([libc6]);
      const pkg = await readDeb(deb!.content.open(), {
        expect: { name: 'libc6', version: libc6.version, architecture: arch },
      });
      const libcPath = pkg.tree.paths().find((p) => p.endsWith('/libc.so.6') && pkg.tree.file(p))!;
      expect(libcPath).toBeDefined();
      const libc = await openElf(pkg.tree.file(libcPath)!.content, libcPath);
      const real = await fortifyListOf(libc);
      const release = /^([0-9]+\.[0-9]+)/.exec(libc6.version)![1]!;
      const builtin = glibcFortifyList(release);
      expect([...builtin.checked].sort()).toEqual([...real.checked].sort());
      expect([...builtin.plain].sort()).toEqual([...real.plain].sort());
      // note: 79 in glibc 2.36 (Debian 12); a mirror of a later release must still match its own libc exactly
      expect(real.checked.size).toBeGreaterThan(70);

      const withLibc = await auditTree(pkg.tree, { closure: false, packages: false, scanCode: false });
      const without = await auditTree(pkg.tree.without(libcPath), {
        closure: false,
        packages: false,
        scanCode: false,
      });
      const counts = (r: typeof withLibc) =>
        Object.fromEntries(
          r.files
            .filter((f) => f.path !== libcPath)
            .map((f) => [f.path, [f.hardening.fortify.fortified, f.hardening.fortify.fortifiable]]),
        );
      const a = counts(withLibc);
      const b = counts(without);
      expect(Object.keys(a).length).toBeGreaterThan(5);
      expect(b).toEqual(a);
      // Some file of the package really has something to fortify: the comparison is not between two sets of zeros.
      expect(Object.values(a).some(([, n]) => (n as number) > 0)).toBe(true);
      for (const f of without.files)
        if (f.path !== libcPath) expect(f.hardening.fortify.evidence).toContain('built-in list of glibc');
    },
  );
});
