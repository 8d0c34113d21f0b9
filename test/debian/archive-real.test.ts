import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ArchiveSuite, openArchive, readAptSources, resolveSuites } from '../../src/debian/index.ts';
import { sha256 } from '../../src/digest/index.ts';
import { isPareError } from '../../src/errors.ts';
import { generateArchiveKey } from '../helpers/fake-debian-archive.ts';
import { peersRequired } from '../helpers/peers.ts';

// The real Debian archive through the mirror the host's apt sources name (nothing here names a host): InRelease
// verified with the system debian-archive-keyring, the main/binary-amd64 index, one stanza, one small .deb.
// Skipped with a printed reason when the host has no Debian source or the mirror cannot be reached; under
// PARE_REQUIRE_PEERS=1 an unreachable configured mirror fails the test.

const suite = (await readAptSources().catch(() => []))
  .filter((e) => e.enabled && e.types.includes('deb'))
  .flatMap((e) => e.suites)
  .find((s) => /^[a-z]+$/.test(s));

let mirror: ArchiveSuite | undefined;
let skipReason = suite ? '' : 'no Debian release suite in the host apt sources (/etc/apt/sources.list{,.d})';
if (suite) {
  try {
    mirror = (await resolveSuites({ suite, security: false, updates: false }))[0];
  } catch (e) {
    skipReason = `no usable Debian mirror in the host apt sources: ${(e as Error).message}`;
  }
}
if (mirror) {
  try {
    const res = await fetch(`${mirror.baseUrl}dists/${suite}/InRelease`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 200) throw new Error(`HEAD InRelease answered ${res.status}`);
  } catch (e) {
    const why = `the configured Debian mirror (from ${mirror.origin}) is unreachable: ${(e as Error).message}`;
    if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${why}`);
    skipReason = why;
    mirror = undefined;
  }
}
if (skipReason) console.warn(`[skip] real Debian archive: ${skipReason}`);

const cacheDir = await mkdtemp(join(tmpdir(), 'pare-real-archive-'));
afterAll(() => rm(cacheDir, { recursive: true, force: true }));

describe.skipIf(!mirror)('the Debian archive of the host apt sources', () => {
  it('verifies InRelease (and the -security one), the amd64 index, a stanza and a .deb', async () => {
    const archive = await openArchive({ suite: suite! }, { cacheDir, architectures: ['amd64'] });
    const main = archive.suites[0]!;
    expect(main.release.codename === suite || main.release.suite === suite).toBe(true);
    expect(archive.suites.map((s) => s.suite)).toEqual([suite, `${suite}-updates`, `${suite}-security`]);
    const security = archive.suites[2]!;
    expect(security.release.validUntil!.getTime()).toBeGreaterThan(Date.now());

    const records = await archive.index(suite!, 'main', 'amd64');
    expect(records.length).toBeGreaterThan(10_000);
    const netbase = records.find((r) => r.name === 'netbase')!;
    expect(netbase.architecture).toBe('all');
    expect(netbase.paragraph.get('Priority')).toBe('important');
    expect(netbase.filename).toMatch(/^pool\/main\/n\/netbase\/netbase_.*_all\.deb$/);
    const libc = records.find((r) => r.name === 'libc6')!;
    expect(libc.paragraph.get('Multi-Arch')).toBe('same');
    expect(libc.paragraph.get('Depends')).toMatch(/libgcc-s1/);

    const [deb] = await archive.fetchDebs([netbase]);
    const bytes = await deb!.content.bytes();
    expect(bytes.length).toBe(netbase.size);
    expect(sha256(bytes)).toBe(netbase.sha256);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('!<arch>\n');
  });

  it('refuses its InRelease when the keyring lacks the archive keys', async () => {
    const keyring = join(cacheDir, 'stranger.asc');
    await writeFile(keyring, (await generateArchiveKey('stranger')).toPublic().armor());
    const err = await openArchive(
      { suite: suite!, security: false, updates: false, keyring },
      { cacheDir },
    ).catch((e) => e);
    expect(isPareError(err, 'DEBIAN_SIGNATURE')).toBe(true);
    expect(err.message).toMatch(/no signature by a trusted key/);
  });
});
