import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareVersions, readAptSources, resolveSuites } from '../../src/debian/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersRequired } from '../helpers/peers.ts';

// `pare outdated` against the real archive of the host's apt sources (nothing here names a host): a lock made with
// `security: false` for libc6 and zlib1g, then outdated (which reads -security anyway). Either bookworm-security has
// newer versions (listed with their CVE ids, exit 1) or it has none (exit 0); after turning security on and
// `pare lock --update` it must exit 0. Skipped with a printed reason when the host has no mirror or it is unreachable.

const suite = (await readAptSources().catch(() => []))
  .filter((e) => e.enabled && e.types.includes('deb'))
  .flatMap((e) => e.suites)
  .find((s) => /^[a-z]+$/.test(s));

let skipReason = suite ? '' : 'no Debian release suite in the host apt sources (/etc/apt/sources.list{,.d})';
if (suite) {
  try {
    const suites = await resolveSuites({ suite });
    for (const s of suites) {
      const res = await fetch(`${s.baseUrl}dists/${s.name}/InRelease`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 200) throw new Error(`HEAD ${s.name} InRelease answered ${res.status}`);
    }
  } catch (e) {
    const why = `the host's Debian mirrors (suite, -updates, -security) are not usable: ${(e as Error).message}`;
    if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${why}`);
    skipReason = why;
  }
}
if (skipReason) console.warn(`[skip] pare outdated on the real archive: ${skipReason}`);

const dir = await mkdtemp(join(tmpdir(), 'pare-outdated-real-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

interface Report {
  securityPending: boolean;
  suites: { suite: string; kind: string }[];
  packages: {
    name: string;
    locked: string;
    candidate: string;
    suite: string;
    security: boolean;
    cves: string[];
    changelog: string;
  }[];
}

describe.skipIf(!!skipReason)('pare outdated on the real Debian archive', () => {
  it('lists the security updates a security: false lock misses, with CVE ids; none after lock --update', async () => {
    const yaml = (security: boolean) =>
      `name: outdated-real\nplatforms: [linux/amd64]\ndebian:\n  suite: ${suite}\n  security: ${security}\npackages: [libc6, zlib1g]\n`;
    await writeFile(join(dir, 'pare.yaml'), yaml(false));
    const env = { XDG_CACHE_HOME: join(dir, 'cache') };
    const locked = await pare(['lock', dir], { env });
    expect(locked.stderr).toBe('');
    expect(locked.code).toBe(0);

    const r = await pare(['outdated', dir, '--json'], { env });
    const report = JSON.parse(r.stdout) as Report;
    console.log(`[outdated-real] ${JSON.stringify(report.packages)}`);
    expect(report.suites.map((s) => s.kind)).toEqual(['release', 'updates', 'security']);
    const security = report.packages.filter((p) => p.security);
    expect(r.code).toBe(security.length > 0 ? 1 : 0);
    expect(report.securityPending).toBe(security.length > 0);
    const lock = JSON.parse(await readFile(join(dir, 'pare.lock'), 'utf8')) as {
      packages: { name: string; version: string; suite: string }[];
    };
    expect(lock.packages.every((p) => !p.suite.endsWith('-security'))).toBe(true);
    for (const p of report.packages) {
      expect(lock.packages.find((l) => l.name === p.name)?.version).toBe(p.locked);
      expect(compareVersions(p.candidate, p.locked)).toBe(1);
    }
    // A security update names what it fixes (every bookworm-security upload of glibc and zlib has named CVEs).
    for (const p of security) {
      if (p.suite.endsWith('-security') && p.changelog === 'complete')
        expect(p.cves.length).toBeGreaterThan(0);
      for (const c of p.cves) expect(c).toMatch(/^CVE-\d{4}-\d{4,}$/);
    }

    // With security updates built in, a fresh lock leaves nothing pending.
    await writeFile(join(dir, 'pare.yaml'), yaml(true));
    expect((await pare(['lock', dir, '--update'], { env })).code).toBe(0);
    const after = await pare(['outdated', dir, '--json'], { env });
    const again = JSON.parse(after.stdout) as Report;
    expect(again.packages.filter((p) => p.security)).toEqual([]);
    expect(after.code).toBe(0);
  });
});
