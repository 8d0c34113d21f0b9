import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ArchiveOptions, loadKeyring, openArchive, type PackageRecord } from '../../src/debian/index.ts';
import { sha256 } from '../../src/digest/index.ts';
import {
  archiveTestOptions,
  cacheTemps,
  createFakeArchive,
  type FakeArchive,
  generateArchiveKey,
  oneSuiteSpec,
  withFakeArchive,
} from '../helpers/fake-debian-archive.ts';

// The secure-apt chain against hostile mirrors: every fault below must be refused with a clear, typed error, leave
// nothing unverified in the cache, and not stop the next (good) fetch from succeeding.

let archive: FakeArchive;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'pare-security-test-'));
  archive = await createFakeArchive({
    suites: [
      {
        name: 'testsuite',
        packages: [
          { name: 'hello', version: '1.0', files: { 'usr/bin/hello': 'hello world\n'.repeat(2000) } },
          { name: 'other', version: '2.0' },
        ],
      },
    ],
  });
});
afterAll(async () => {
  await archive?.close();
  await rm(work, { recursive: true, force: true });
});
afterEach(() => archive.fault(undefined));

const opts = (extra: Partial<ArchiveOptions> = {}) => archiveTestOptions(work, extra);
const source = (extra = {}) => ({
  suite: 'testsuite',
  mirror: archive.url,
  keyring: archive.keyringAsc,
  security: false,
  updates: false,
  ...extra,
});

/** Returns the cache's blobs, after checking each one hashes to its name (the cache is never poisoned). */
async function blobs(cacheDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(join(cacheDir, 'blobs', 'sha256'));
  } catch {
    return [];
  }
  for (const name of names) {
    expect(sha256(await readFile(join(cacheDir, 'blobs', 'sha256', name)))).toBe(`sha256:${name}`);
  }
  return names.sort();
}

/**
 * Rewrites the Release line of the plain main/binary-amd64/Packages with `edit` and serves it as InRelease re-signed
 * with the trusted key: a mirror whose signature is good but whose promise about the uncompressed index is false.
 */
async function forgePlainPackagesLine(odd: FakeArchive, edit: (line: string) => string): Promise<void> {
  const release = (await odd.read('dists/testsuite/Release')).toString();
  const plainLine = release
    .split('\n')
    .find((l) => / main\/binary-amd64\/Packages$/.test(l) && l.length > 70)!;
  const signed = await openpgp.sign({
    message: await openpgp.createCleartextMessage({ text: release.replace(plainLine, edit(plainLine)) }),
    signingKeys: archive.key,
  });
  await odd.write('dists/testsuite/InRelease', signed as string);
}

function flipByteAt(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

describe('InRelease', () => {
  describe('when one byte of the signed text is changed', () => {
    it('throws DEBIAN_SIGNATURE naming the URL, then accepts the untouched file', async () => {
      archive.fault((path) =>
        path === 'dists/testsuite/InRelease'
          ? { body: (b) => Buffer.from(b.toString().replace('Label: Test', 'Label: Tesu')) }
          : undefined,
      );
      const o = opts();
      await expect(openArchive(source(), o)).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_SIGNATURE',
          url: `${archive.url}dists/testsuite/InRelease`,
          message: expect.stringMatching(/cannot verify .*InRelease: bad signature by [0-9a-f]{16}/),
        }),
      );
      expect(await blobs(o.cacheDir!)).toEqual([]);
      archive.fault(undefined);
      await expect(openArchive(source(), o)).resolves.toBeDefined();
    });
  });

  describe('when unsigned fields are added before the signed block', () => {
    it('throws DEBIAN_SIGNATURE', async () => {
      archive.fault((path) =>
        path === 'dists/testsuite/InRelease'
          ? { body: (b) => Buffer.concat([Buffer.from('Suite: evil\n'), b]) }
          : undefined,
      );
      await expect(openArchive(source(), opts())).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_SIGNATURE',
          message: expect.stringMatching(/text before or after/),
        }),
      );
    });
  });

  describe('when it is signed by a key that is not in the keyring', () => {
    it('throws DEBIAN_SIGNATURE saying no trusted key signed it', async () => {
      const stranger = await generateArchiveKey('stranger');
      const keyring = join(work, 'stranger.asc');
      await writeFile(keyring, stranger.toPublic().armor());
      await expect(openArchive(source({ keyring }), opts())).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_SIGNATURE',
          message: expect.stringMatching(/no signature by a trusted key .*stranger\.asc.*debian\.keyring/),
        }),
      );
    });
  });

  describe('when InRelease is missing and Release.gpg does not match Release', () => {
    it('throws DEBIAN_SIGNATURE for the detached signature', async () => {
      archive.fault((path) => {
        if (path === 'dists/testsuite/InRelease') return { status: 404 };
        if (path === 'dists/testsuite/Release')
          return { body: (b) => Buffer.from(b.toString().replace('Label: Test', 'Label: Evil')) };
        return undefined;
      });
      await expect(openArchive(source(), opts())).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_SIGNATURE',
          message: expect.stringMatching(/Release\.gpg: bad signature/),
        }),
      );
    });
  });

  describe('when Valid-Until has passed', () => {
    it('throws DEBIAN_EXPIRED with the expiry date', async () => {
      const dates = {
        date: new Date(Date.now() - 10 * 86400_000),
        validUntil: new Date(Date.now() - 3 * 86400_000),
      };
      await withFakeArchive(oneSuiteSpec(archive.key, dates), async (expired) => {
        await expect(openArchive(source({ mirror: expired.url }), opts())).rejects.toThrow(
          expect.objectContaining({
            code: 'DEBIAN_EXPIRED',
            message: expect.stringMatching(/expired at \d{4}-\d\d-\d\dT.*Valid-Until.*debian\.snapshot/),
          }),
        );
      });
    });

    it('uses the injected clock (a replayed Release is refused once it is old)', async () => {
      await withFakeArchive(
        oneSuiteSpec(archive.key, { validUntil: new Date(Date.now() + 86400_000) }),
        async (later) => {
          const src = source({ mirror: later.url });
          await expect(openArchive(src, opts())).resolves.toBeDefined();
          const inAWeek = new Date(Date.now() + 7 * 86400_000);
          await expect(openArchive(src, opts({ now: () => inAWeek }))).rejects.toThrow(
            expect.objectContaining({ code: 'DEBIAN_EXPIRED' }),
          );
        },
      );
    });
  });

  describe('when Date is in the future', () => {
    it('throws DEBIAN_RELEASE_INVALID telling to check the clock', async () => {
      await withFakeArchive(
        oneSuiteSpec(archive.key, { date: new Date(Date.now() + 86400_000) }),
        async (future) => {
          await expect(openArchive(source({ mirror: future.url }), opts())).rejects.toThrow(
            expect.objectContaining({
              code: 'DEBIAN_RELEASE_INVALID',
              message: expect.stringMatching(/in the future/),
            }),
          );
        },
      );
    });
  });

  describe('when a configured suite does not exist on the mirror', () => {
    it('throws DEBIAN_NOT_FOUND saying how to turn it off', async () => {
      await expect(openArchive(source({ updates: true }), opts())).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_NOT_FOUND',
          message: expect.stringMatching(
            /cannot find suite "testsuite-updates" .*or set debian\.updates: false/,
          ),
        }),
      );
    });
  });

  describe('when the mirror answers with another suite (a replay)', () => {
    it('throws DEBIAN_SUITE_MISMATCH', async () => {
      await withFakeArchive(oneSuiteSpec(archive.key, { name: 'othersuite' }), async (other) => {
        const theirs = await other.read('dists/othersuite/InRelease');
        archive.fault((path) => (path === 'dists/testsuite/InRelease' ? { body: () => theirs } : undefined));
        await expect(openArchive(source(), opts())).rejects.toThrow(
          expect.objectContaining({
            code: 'DEBIAN_SUITE_MISMATCH',
            message: expect.stringMatching(/codename "othersuite", not "testsuite"/),
          }),
        );
      });
    });
  });
});

describe('Packages index', () => {
  describe('when its bytes do not match the Release hash', () => {
    it('throws DEBIAN_HASH_MISMATCH before decompressing, keeps nothing, and a later good fetch works', async () => {
      archive.fault((path) =>
        path.includes('/binary-amd64/')
          ? { body: (b) => flipByteAt(b, Math.floor(b.length / 2)) }
          : undefined,
      );
      const o = opts();
      const a = await openArchive(source(), o);
      await expect(a.index('testsuite', 'main', 'amd64')).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_HASH_MISMATCH',
          message: expect.stringMatching(
            /cannot use index main\/binary-amd64\/Packages\.gz .*sha256 differs/,
          ),
        }),
      );
      expect(await blobs(o.cacheDir!)).toEqual([]);
      expect(await cacheTemps(o.cacheDir!)).toEqual([]);
      archive.fault(undefined);
      expect((await a.index('testsuite', 'main', 'amd64')).map((r) => r.name)).toEqual(['hello', 'other']);
    });
  });
});

describe('Packages index whose compressed file is right but inflates to other bytes', () => {
  it('throws DEBIAN_HASH_MISMATCH against the Release entry of the uncompressed file', async () => {
    // note: the Release lists both Packages.xz and the plain Packages; a re-signed Release with a wrong plain hash
    // stands for an .xz that inflates to something else (a decompressor bug or a crafted stream).
    await withFakeArchive(oneSuiteSpec(archive.key), async (odd) => {
      await forgePlainPackagesLine(odd, (line) => line.replace(/^ [0-9a-f]{64}/, ` ${'0'.repeat(64)}`));
      const o = opts({ indexCompression: ['xz'] });
      const a = await openArchive(source({ mirror: odd.url }), o);
      await expect(a.index('testsuite', 'main', 'amd64')).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_HASH_MISMATCH',
          message: expect.stringMatching(
            /Packages\.xz: decompressed it does not match main\/binary-amd64\/Packages/,
          ),
        }),
      );
      expect((await blobs(o.cacheDir!)).some((b) => b === '0'.repeat(64))).toBe(false);
    });
  });
});

describe('Packages.gz index that inflates to another size than its Release entry', () => {
  it.each([
    ['shorter', -7, /it inflates to more than \d+ bytes/],
    ['longer', 7, /got \d+ bytes/],
  ])('throws DEBIAN_HASH_MISMATCH when the Release says it is %s', async (_, delta, why) => {
    // note: the gz file itself matches the Release; only the plain Packages size is forged (and re-signed), so the
    // inflated stream is cut off at the promised size, or ends before it.
    await withFakeArchive(oneSuiteSpec(archive.key), async (odd) => {
      await forgePlainPackagesLine(odd, (line) =>
        line.replace(/ (\d+) main/, (_m, size: string) => ` ${Number(size) + delta} main`),
      );
      const o = opts({ indexCompression: ['gz'] });
      const a = await openArchive(source({ mirror: odd.url }), o);
      await expect(a.index('testsuite', 'main', 'amd64')).rejects.toThrow(
        expect.objectContaining({ code: 'DEBIAN_HASH_MISMATCH', message: expect.stringMatching(why) }),
      );
      expect(await cacheTemps(o.cacheDir!)).toEqual([]);
      await blobs(o.cacheDir!);
    });
  });
});

describe('.deb download', () => {
  let hello: PackageRecord;
  beforeAll(async () => {
    const a = await openArchive(source(), opts());
    hello = (await a.index('testsuite', 'main', 'amd64')).find((r) => r.name === 'hello')!;
  });
  const isHello = (path: string) => path === hello.filename;

  describe('when the .deb has a wrong byte', () => {
    it('throws DEBIAN_HASH_MISMATCH naming the package, keeps nothing, then fetches the good one', async () => {
      archive.fault((path) => (isHello(path) ? { body: (b) => flipByteAt(b, 100) } : undefined));
      const o = opts();
      const a = await openArchive(source(), o);
      const before = await blobs(o.cacheDir!);
      await expect(a.fetchDebs([hello])).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_HASH_MISMATCH',
          url: `${archive.url}${hello.filename}`,
          message: expect.stringMatching(
            /cannot use package hello 1\.0 amd64 \(pool\/main\/h\/hello\/hello_1\.0_amd64\.deb\)/,
          ),
        }),
      );
      expect(await blobs(o.cacheDir!)).toEqual(before);
      expect(await cacheTemps(o.cacheDir!)).toEqual([]);
      archive.fault(undefined);
      const [deb] = await a.fetchDebs([hello]);
      expect(sha256(await deb!.content.bytes())).toBe(hello.sha256);
    });
  });

  describe('when the mirror always sends a truncated .deb', () => {
    it('throws DEBIAN_HASH_MISMATCH saying it was truncated; the next fetch resumes and succeeds', async () => {
      archive.fault((path) =>
        isHello(path) ? { body: (b) => b.subarray(0, Math.min(b.length, 1000)) } : undefined,
      );
      const o = opts({ retries: 2 });
      const a = await openArchive(source(), o);
      const before = await blobs(o.cacheDir!);
      await expect(a.fetchDebs([hello])).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_HASH_MISMATCH',
          // note: each retry resumes with Range and gets 1000 more bytes, so 3 attempts bring 3000
          message: expect.stringMatching(/truncated: got 3000 of \d+ bytes after 3 attempts/),
        }),
      );
      expect(await blobs(o.cacheDir!)).toEqual(before);
      archive.fault(undefined);
      const [deb] = await a.fetchDebs([hello]);
      expect(sha256(await deb!.content.bytes())).toBe(hello.sha256);
      expect(archive.ranges.get(hello.filename)).toEqual(['bytes=1000-', 'bytes=2000-', 'bytes=3000-']);
    });
  });

  describe('when the mirror sends more bytes than the index lists', () => {
    it('throws DEBIAN_HASH_MISMATCH without reading past the promised size', async () => {
      archive.fault((path) =>
        isHello(path) ? { body: (b) => Buffer.concat([b, Buffer.alloc(4096)]) } : undefined,
      );
      const o = opts();
      const a = await openArchive(source(), o);
      await expect(a.fetchDebs([hello])).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_HASH_MISMATCH',
          message: expect.stringMatching(/more than the \d+ bytes/),
        }),
      );
      expect(await cacheTemps(o.cacheDir!)).toEqual([]);
    });
  });

  describe('when a cached .deb was damaged on disk', () => {
    it('notices on use, deletes it and downloads it again', async () => {
      const o = opts();
      const a = await openArchive(source(), o);
      const [first] = await a.fetchDebs([hello]);
      await writeFile(first!.path, flipByteAt(await readFile(first!.path), 10));
      archive.requests.length = 0;
      const [again] = await a.fetchDebs([hello]);
      expect(sha256(await again!.content.bytes())).toBe(hello.sha256);
      expect(archive.requests).toContain(hello.filename);
    });
  });

  describe('when the server keeps failing', () => {
    it('throws DEBIAN_HTTP after the retries, naming the attempts', async () => {
      archive.fault((path) => (isHello(path) ? { status: 502 } : undefined));
      const a = await openArchive(source(), opts({ retries: 2 }));
      await expect(a.fetchDebs([hello])).rejects.toThrow(
        expect.objectContaining({
          code: 'DEBIAN_HTTP',
          message: expect.stringMatching(/answered 502 .*gave up after 3 attempts/),
        }),
      );
    });
  });
});

describe('loadKeyring', () => {
  it('selects keys by the fingerprints of an apt Signed-By', async () => {
    const root = join(work, 'fake-root');
    await mkdir(join(root, 'usr/share/keyrings'), { recursive: true });
    const stranger = await generateArchiveKey('stranger');
    await writeFile(
      join(root, 'usr/share/keyrings/debian-archive-keyring.gpg'),
      Buffer.concat([Buffer.from(stranger.toPublic().write()), await readFile(archive.keyringGpg)]),
    );
    const all = await loadKeyring(undefined, { root });
    expect(all.keys).toHaveLength(2);
    const picked = await loadKeyring(archive.key.getFingerprint().toUpperCase(), { root });
    expect(picked.keys.map((k) => k.getFingerprint())).toEqual([archive.key.getFingerprint()]);
  });

  it.each([
    ['a missing file', async () => join(work, 'nope.gpg'), /cannot read keyring .*nope\.gpg/],
    [
      'a GnuPG keybox',
      async () => {
        const p = join(work, 'pubring.kbx');
        await writeFile(p, Buffer.from('\0\0\0\x20\x01\x01\0\0KBXf\0\0\0\0', 'latin1'));
        return p;
      },
      /GnuPG keybox; export it with "gpg --export/,
    ],
    [
      'garbage',
      async () => {
        const p = join(work, 'garbage.asc');
        await writeFile(
          p,
          '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64\n-----END PGP PUBLIC KEY BLOCK-----\n',
        );
        return p;
      },
      /want a binary \(gpg --export\) or armored/,
    ],
  ])('throws DEBIAN_NO_KEYRING for %s', async (_what, make, message) => {
    await expect(loadKeyring(await make())).rejects.toThrow(
      expect.objectContaining({ code: 'DEBIAN_NO_KEYRING', message: expect.stringMatching(message) }),
    );
  });

  it('says to install debian-archive-keyring when the system has none', async () => {
    await expect(loadKeyring(undefined, { root: join(work, 'empty-root') })).rejects.toThrow(
      expect.objectContaining({
        code: 'DEBIAN_NO_KEYRING',
        message: expect.stringMatching(/install the debian-archive-keyring package or set debian\.keyring/),
      }),
    );
  });
});

describe('keyring', () => {
  it('reads binary (.gpg) and armored (.asc) keyrings and a directory of them', async () => {
    const dir = join(work, 'keys');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a.gpg'), await readFile(archive.keyringGpg));
    for (const keyring of [archive.keyringGpg, archive.keyringAsc, dir]) {
      await expect(openArchive(source({ keyring }), opts())).resolves.toBeDefined();
    }
  });
});
