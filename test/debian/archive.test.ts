import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ArchiveOptions,
  assertLockSatisfied,
  createLock,
  type DownloadProgress,
  diffLocks,
  fetchLockedPackages,
  formatLock,
  formatSnapshot,
  openArchive,
  parseLock,
  readLock,
  writeLock,
} from '../../src/debian/index.ts';
import { sha256 } from '../../src/digest/index.ts';
import {
  archiveTestOptions,
  cacheTemps,
  createFakeArchive,
  type FakeArchive,
  type FakeArchiveSpec,
  oneSuiteSpec,
  withFakeArchive,
} from '../helpers/fake-debian-archive.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';

// The archive client end to end against a generated, signed archive on 127.0.0.1: mirror discovery from a temp apt
// dir, the InRelease chain, indexes through the cache, .debs with resume/retry/parallelism, and the lockfile.

let archive: FakeArchive;
let work: string;

/** Returns `n` incompressible but repeatable bytes (xorshift32). */
function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const base: FakeArchiveSpec = {
  suites: [
    {
      name: 'testsuite',
      packages: [
        {
          name: 'hello',
          version: '1.0-1',
          fields: { Depends: 'libfoo1 (>= 1.0)' },
          files: { 'usr/bin/hello': 'hi' },
        },
        { name: 'libfoo1', version: '1.0-1', fields: { 'Multi-Arch': 'same', Provides: 'libfoo' } },
        {
          name: 'docs',
          version: '2',
          architecture: 'all',
          files: { 'usr/share/doc/docs/README': 'read me' },
        },
        {
          name: 'big',
          version: '1',
          // note: noise does not compress, so the .deb is big enough to be cut in the middle
          files: { 'usr/lib/big.bin': { content: noise(300_000) } },
        },
      ],
    },
    {
      name: 'testsuite-updates',
      packages: [{ name: 'hello', version: '1.0-2', files: { 'usr/bin/hello': 'hi2' } }],
    },
    {
      name: 'testsuite-security',
      packages: [{ name: 'libfoo1', version: '1.0-1+deb1u1', fields: { 'Multi-Arch': 'same' } }],
    },
  ],
  architectures: ['amd64', 'arm64'],
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'pare-archive-test-'));
  archive = await createFakeArchive(base);
});
afterAll(async () => {
  await archive?.close();
  await rm(work, { recursive: true, force: true });
});

const execFileAsync = promisify(execFile);

const opts = (extra: Partial<ArchiveOptions> = {}) => archiveTestOptions(work, extra);

const source = () => ({
  suite: 'testsuite',
  mirror: archive.url,
  securityMirror: archive.url,
  keyring: archive.keyringAsc,
});

describe('openArchive', () => {
  describe('when the archive is well signed', () => {
    it('verifies every suite and records its InRelease digest', async () => {
      const a = await openArchive(source(), opts());
      expect(a.suites.map((s) => [s.suite, s.kind, s.release.codename])).toEqual([
        ['testsuite', 'release', 'testsuite'],
        ['testsuite-updates', 'updates', 'testsuite-updates'],
        ['testsuite-security', 'security', 'testsuite-security'],
      ]);
      const inRelease = await archive.read('dists/testsuite/InRelease');
      expect(a.suites[0]!.inRelease).toBe(sha256(inRelease));
    });

    it('returns records of every suite and architecture, arch-all included', async () => {
      const a = await openArchive(source(), opts({ architectures: ['amd64', 'arm64'] }));
      const recs = await a.packages();
      const ids = recs.map((r) => `${r.suite} ${r.name} ${r.version} ${r.architecture}`);
      expect(ids).toContain('testsuite hello 1.0-1 amd64');
      expect(ids).toContain('testsuite hello 1.0-1 arm64');
      expect(ids).toContain('testsuite docs 2 all');
      expect(ids).toContain('testsuite-updates hello 1.0-2 amd64');
      expect(ids).toContain('testsuite-security libfoo1 1.0-1+deb1u1 arm64');
      const hello = recs.find((r) => r.name === 'hello')!;
      expect(hello.paragraph.get('Depends')).toBe('libfoo1 (>= 1.0)');
      expect(recs.find((r) => r.name === 'libfoo1')!.provides).toBe('libfoo');
    });

    it('fetches indexes by hash and reads them from the cache the second time', async () => {
      const o = opts();
      archive.requests.length = 0;
      const a = await openArchive(source(), o);
      await a.index('testsuite', 'main', 'amd64');
      expect(archive.requests.some((p) => p.includes('binary-amd64/by-hash/SHA256/'))).toBe(true);
      archive.requests.length = 0;
      const b = await openArchive(source(), o);
      const again = await b.index('testsuite', 'main', 'amd64');
      expect(again.map((r) => r.name).sort()).toEqual(['big', 'docs', 'hello', 'libfoo1']);
      expect(archive.requests.filter((p) => p.includes('Packages') || p.includes('by-hash'))).toEqual([]);
    });
  });

  describe('when indexCompression is set', () => {
    it.each([
      [['xz'], 'Packages.xz'],
      [['none'], 'Packages'],
      [['gz', 'xz'], 'Packages.gz'],
    ] as const)('with %j fetches %s', async (order, name) => {
      const a = await openArchive(source(), opts({ indexCompression: order }));
      archive.requests.length = 0;
      const names = new Map(
        [...a.suites[0]!.release.files.values()].map((f) => [f.sha256.slice(7), f.path.split('/').pop()]),
      );
      expect((await a.index('testsuite', 'main', 'amd64')).length).toBe(4);
      const fetched = archive.requests.map((p) => names.get(p.split('/').pop()!) ?? p.split('/').pop());
      expect(fetched).toEqual([name]);
    });
  });

  describe('when the suite has no InRelease', () => {
    it('verifies Release with Release.gpg instead', async () => {
      const only = await createFakeArchive({
        suites: [{ name: 'oldsuite', inRelease: false, packages: [{ name: 'a', version: '1' }] }],
      });
      try {
        const a = await openArchive(
          { suite: 'oldsuite', mirror: only.url, keyring: only.keyringGpg, security: false, updates: false },
          opts(),
        );
        expect(only.requests).toContain('dists/oldsuite/Release.gpg');
        expect((await a.packages()).map((r) => r.name)).toEqual(['a']);
      } finally {
        await only.close();
      }
    });
  });

  describe('when the mirror comes from the apt sources', () => {
    it('reads a deb822 .sources file with Signed-By, and the -security entry for the security mirror', async () => {
      const apt = join(work, 'apt-deb822');
      await mkdir(join(apt, 'sources.list.d'), { recursive: true });
      await writeFile(
        join(apt, 'sources.list.d', 'test.sources'),
        `# generated by the test\nTypes: deb\nURIs: ${archive.url}\nSuites: testsuite testsuite-updates\nComponents: main\nSigned-By: ${archive.keyringGpg}\n\nTypes: deb\nURIs: ${archive.url}\nSuites: testsuite-security\nComponents: main\nSigned-By: ${archive.keyringGpg}\n`,
      );
      const a = await openArchive({ suite: 'testsuite' }, opts({ aptDir: apt }));
      expect(a.suites.map((s) => s.suite)).toEqual(['testsuite', 'testsuite-updates', 'testsuite-security']);
    });

    it('reads a one-line sources.list with [signed-by=…]', async () => {
      const apt = join(work, 'apt-oneline');
      await mkdir(apt, { recursive: true });
      await writeFile(
        join(apt, 'sources.list'),
        `deb [arch=amd64 signed-by=${archive.keyringAsc}] ${archive.url} testsuite main\n`,
      );
      const a = await openArchive({ suite: 'testsuite', security: false }, opts({ aptDir: apt }));
      expect(a.suites.map((s) => s.suite)).toEqual(['testsuite', 'testsuite-updates']);
    });

    it('prefers PARE_DEBIAN_MIRROR over the apt sources', async () => {
      const apt = join(work, 'apt-bad');
      await mkdir(apt, { recursive: true });
      await writeFile(join(apt, 'sources.list'), 'deb http://127.0.0.1:9/nowhere testsuite main\n');
      const a = await openArchive(
        { suite: 'testsuite', security: false, updates: false, keyring: archive.keyringAsc },
        opts({ aptDir: apt, env: { PARE_DEBIAN_MIRROR: archive.url } }),
      );
      expect(a.suites[0]!.baseUrl).toBe(archive.url);
    });
  });
});

describe('openArchive with debian.snapshot', () => {
  const snapshotSource = (at: Date) => ({
    suite: 'testsuite',
    snapshot: formatSnapshot(at),
    keyring: archive.keyringAsc,
  });

  it('reads every suite from <snapshot mirror>/archive/debian{,-security}/<ts>/', async () => {
    const at = new Date(Date.now() + 60_000);
    archive.requests.length = 0;
    const a = await openArchive(
      snapshotSource(at),
      opts({ env: { PARE_DEBIAN_SNAPSHOT_MIRROR: archive.url } }),
    );
    const ts = formatSnapshot(at);
    expect(a.suites.map((s) => s.baseUrl.slice(archive.url.length))).toEqual([
      `archive/debian/${ts}/`,
      `archive/debian/${ts}/`,
      `archive/debian-security/${ts}/`,
    ]);
    expect(archive.requests).toContain(`archive/debian-security/${ts}/dists/testsuite-security/InRelease`);
    const [deb] = await a.fetchDebs((await a.index('testsuite', 'main', 'amd64')).slice(0, 1));
    expect(deb!.path).toContain('blobs/sha256/');
  });

  it('checks Release dates at the snapshot instant, not now', async () => {
    await withFakeArchive(
      oneSuiteSpec(archive.key, { validUntil: new Date(Date.now() + 3600_000) }),
      async (expiring) => {
        const src = {
          ...snapshotSource(new Date(Date.now() + 2 * 3600_000)),
          security: false,
          updates: false,
        };
        await expect(
          openArchive(src, opts({ env: { PARE_DEBIAN_SNAPSHOT_MIRROR: expiring.url } })),
        ).rejects.toThrow(expect.objectContaining({ code: 'DEBIAN_EXPIRED' }));
      },
    );
  });
});

describe('DebianArchive.fetchDebs', () => {
  it('downloads in parallel, verifies, and reports progress up to the total', async () => {
    const events: DownloadProgress[] = [];
    const a = await openArchive(source(), opts({ onProgress: (e) => events.push(e), concurrency: 3 }));
    const recs = (await a.packages()).filter((r) => r.suite === 'testsuite');
    const debs = await a.fetchDebs(recs);
    expect(debs.map((d) => d.record.name)).toEqual(recs.map((r) => r.name));
    for (const d of debs) {
      const bytes = await d.content.bytes();
      expect(sha256(bytes)).toBe(d.record.sha256);
    }
    const last = events.filter((e) => e.phase === 'package').at(-1)!;
    expect(last.filesDone).toBe(recs.length);
    expect(last.bytesDone).toBe(recs.reduce((s, r) => s + r.size, 0));
    expect(last.bytesTotal).toBe(last.bytesDone);
  });

  it('resumes a dropped download with Range and retries 503s', async () => {
    const a = await openArchive(source(), opts());
    const big = (await a.index('testsuite', 'main', 'amd64')).find((r) => r.name === 'big')!;
    let drops = 0;
    let unavailable = 0;
    archive.fault((path, req) => {
      if (path !== big.filename) return undefined;
      if (unavailable < 2) {
        unavailable++;
        return { status: 503 };
      }
      if (!req.headers.range && drops < 1) {
        drops++;
        return { dropAfter: Math.floor(big.size / 3) };
      }
      return undefined;
    });
    try {
      const [deb] = await a.fetchDebs([big]);
      expect(sha256(await deb!.content.bytes())).toBe(big.sha256);
      expect(archive.ranges.get(big.filename)?.[0]).toMatch(/^bytes=\d+-$/);
    } finally {
      archive.fault(undefined);
    }
  });

  it('lets two pare processes fill one cache at the same time', async () => {
    const cacheDir = join(work, 'shared-cache');
    const script = join(work, 'fetch-all.ts');
    await writeFile(
      script,
      `import { openArchive } from ${JSON.stringify(join(import.meta.dirname, '../../src/debian/index.ts'))};
const a = await openArchive(${JSON.stringify(source())}, { cacheDir: ${JSON.stringify(cacheDir)}, env: {}, architectures: ['amd64', 'arm64'], retryDelayMs: 1 });
const debs = await a.fetchDebs(await a.packages());
console.log(debs.length);
`,
    );
    const node = join(import.meta.dirname, '../../node_modules/.bin/node');
    const run = () => execFileAsync(node, [script], { encoding: 'utf8' }).then((r) => r.stdout.trim());
    const counts = await Promise.all([run(), run(), run()]);
    expect(new Set(counts).size).toBe(1);
    expect(Number(counts[0])).toBeGreaterThan(5);
    expect(await cacheTemps(cacheDir)).toEqual([]);
    for (const name of await readdir(join(cacheDir, 'blobs', 'sha256'))) {
      expect(sha256(await readFile(join(cacheDir, 'blobs', 'sha256', name)))).toBe(`sha256:${name}`);
    }
  });

  it('lets two builds in one process fill one cache at the same time', async () => {
    const o = opts();
    const [a, b] = await Promise.all([openArchive(source(), o), openArchive(source(), o)]);
    const recs = (await a.index('testsuite', 'main', 'amd64')).concat(
      await b.index('testsuite', 'main', 'arm64'),
    );
    const [x, y] = await Promise.all([a.fetchDebs(recs), b.fetchDebs(recs)]);
    expect(x.map((d) => d.path)).toEqual(y.map((d) => d.path));
    expect(await cacheTemps(o.cacheDir!)).toEqual([]);
  });
});

describe('dpkg-deb', () => {
  const p = peersOrSkip('dpkg-deb');
  it.skipIf(p.skip)('reads the .debs the fake archive serves (the fixtures are real .debs)', async () => {
    const a = await openArchive(source(), opts());
    const hello = (await a.index('testsuite', 'main', 'amd64')).find((r) => r.name === 'hello')!;
    const [deb] = await a.fetchDebs([hello]);
    expect(runPeer(p.paths['dpkg-deb']!, ['--field', deb!.path, 'Package', 'Version'])).toBe(
      'Package: hello\nVersion: 1.0-1\n',
    );
    expect(runPeer(p.paths['dpkg-deb']!, ['--contents', deb!.path])).toMatch(/\.\/usr\/bin\/hello/);
  });
});

describe('lockfile', () => {
  it('round-trips byte for byte and pins the packages', async () => {
    const a = await openArchive(source(), opts());
    const recs = (await a.index('testsuite', 'main', 'amd64')).filter((r) => r.name !== 'big');
    const lock = createLock(a.suites, [...recs].reverse());
    const text = formatLock(lock);
    expect(formatLock(parseLock(text))).toBe(text);
    expect(formatLock(createLock(a.suites, recs))).toBe(text);
    const file = join(work, 'pare.lock');
    await writeLock(file, lock);
    expect(await readLock(file)).toEqual(parseLock(text));
    expect(JSON.parse(text).packages.map((p: { name: string }) => p.name)).toEqual([
      'docs',
      'hello',
      'libfoo1',
    ]);

    const debs = await fetchLockedPackages(lock, source(), opts());
    expect(debs.map((d) => d.record.name)).toEqual(['docs', 'hello', 'libfoo1']);
  });

  it('reports a changed package set under --locked', async () => {
    const a = await openArchive(source(), opts({ architectures: ['amd64', 'arm64'] }));
    const recs = await a.packages();
    const old = createLock(
      a.suites,
      recs.filter((r) => r.name === 'hello' && r.suite === 'testsuite'),
    );
    const fresh = createLock(
      a.suites,
      recs.filter((r) => r.name === 'hello' && r.suite === 'testsuite-updates'),
    );
    expect(diffLocks(old, fresh).map((c) => `${c.kind} ${c.subject}`)).toEqual([
      'changed package hello:amd64',
      'changed package hello:arm64',
    ]);
    expect(() => assertLockSatisfied(old, fresh)).toThrow(
      expect.objectContaining({
        code: 'DEBIAN_LOCK_MISMATCH',
        message: expect.stringMatching(/pare lock --update/),
      }),
    );
    expect(() => assertLockSatisfied(old, old)).not.toThrow();
  });

  it('says how to use a snapshot when the mirror no longer has a locked package', async () => {
    const gone = await createFakeArchive({
      suites: [
        {
          name: 'testsuite',
          packages: [{ name: 'old', version: '1' }],
          date: new Date('2025-01-02T03:04:05Z'),
        },
      ],
    });
    try {
      const src = {
        suite: 'testsuite',
        mirror: gone.url,
        keyring: gone.keyringAsc,
        security: false,
        updates: false,
      };
      const a = await openArchive(src, opts());
      const lock = createLock(a.suites, await a.packages());
      await gone.remove(gone.poolPath('old', '1'));
      await expect(fetchLockedPackages(lock, src, opts())).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_LOCK_STALE',
          message: expect.stringMatching(
            /no longer has pool\/main\/o\/old\/old_1_amd64\.deb; set debian\.snapshot: 20250102T030405Z/,
          ),
        }),
      );
    } finally {
      await gone.close();
    }
  });
});
