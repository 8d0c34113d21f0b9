import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpTree } from '../../src/fstree/index.ts';
import { readDpkgDatabase } from '../../src/sbom/index.ts';
import { formatSliceSummary, formatWhyKept, type SliceResult, sliceTree } from '../../src/slice/index.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runInSandbox, treeBytes, unpack, unresolvedClosures } from './check.ts';
import { aptAvailable, type PackageSet, packageSet } from './debs.ts';

/**
 * The python3 package set from the configured Debian mirror, sliced for `python3` and run in the bubblewrap sandbox.
 * The probe suite exercises the modules whose C extensions and data files slicing must not lose.
 */

const peers = peersOrSkip('bwrap', 'strace', 'apt-get');
const skip = peers.skip || !aptAvailable();

const PROBE = `
import asyncio, ctypes, decimal, hashlib, json, sqlite3, ssl, sys, urllib.request, zlib, zoneinfo
port = int(sys.argv[1])
ctx = ssl.create_default_context()
assert ctx.cert_store_stats()["x509_ca"] > 100, ctx.cert_store_stats()
db = sqlite3.connect(":memory:")
db.execute("create table t(x)")
db.execute("insert into t values (42)")
assert db.execute("select x from t").fetchone()[0] == 42
assert json.loads(json.dumps({"a": [1, 2]})) == {"a": [1, 2]}
assert zlib.decompress(zlib.compress(b"x" * 1000)) == b"x" * 1000
assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf")
assert ctypes.CDLL("libc.so.6").getpid() > 0
assert str(decimal.Decimal("1.1") + decimal.Decimal("2.2")) == "3.3"
async def fetch():
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /async HTTP/1.0\\r\\n\\r\\n")
    await w.drain()
    data = await r.read()
    w.close()
    return data
assert asyncio.run(fetch()).endswith(b"pong")
assert urllib.request.urlopen(f"http://127.0.0.1:{port}/").read() == b"pong"
assert zoneinfo.ZoneInfo("Europe/Paris").utcoffset(__import__("datetime").datetime(2024, 1, 1)).seconds == 3600
print("ok", ssl.OPENSSL_VERSION, sqlite3.sqlite_version)
`;

describe.skipIf(skip)('slicing the python3 package set', () => {
  let set: PackageSet;
  let sliced: SliceResult;
  let server: Server;
  let port = 0;
  const work = skip ? '' : tempDir('pare-slice-py-');

  beforeAll(async () => {
    set = await packageSet('python3');
    sliced = await sliceTree(set.assembled.tree, {
      entrypoint: ['python3'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      owners: set.assembled.owners,
    });
    server = createServer((_req, res) => res.end('pong'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  }, 300_000);

  afterAll(() => server?.close());

  it('keeps at most half of the unsliced package set', () => {
    const before = treeBytes(set.assembled.tree);
    const after = treeBytes(sliced.tree);
    console.log(
      `python3 set: ${set.files.length} packages, unsliced ${(before / 2 ** 20).toFixed(1)} MiB, sliced ${(after / 2 ** 20).toFixed(1)} MiB (${((100 * after) / before).toFixed(1)}%)\n${formatSliceSummary(sliced)}`,
    );
    expect(sliced.before.bytes).toBe(before);
    expect(after / before).toBeLessThanOrEqual(0.5);
  });

  it('leaves every kept ELF file with a closure that resolves inside the image', async () => {
    const { checked, problems } = await unresolvedClosures(sliced.tree);
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(40);
  });

  it('runs the probe suite in the sandbox', async () => {
    const root = await unpack(sliced.tree, work);
    const r = await runInSandbox(root, ['python3', '-c', PROBE, String(port)], { net: true });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ok OpenSSL 3\./);
    expect(r.code).toBe(0);
  }, 60_000);

  it('keeps the metadata of kept packages, marked when sliced, and drops the rest', async () => {
    const pkgs = new Map((await readDpkgDatabase(sliced.tree)).map((p) => [p.name, p]));
    expect(pkgs.get('libc6')?.sliced).toBe(true);
    expect(pkgs.get('python3.11-minimal')).toBeDefined();
    expect(pkgs.has('dpkg')).toBe(false);
    for (const p of pkgs.values()) {
      for (const f of p.md5sums.keys()) expect(sliced.tree.resolve(f).entry, `${p.name}: ${f}`).toBeDefined();
    }
    for (const [key, s] of sliced.summary) expect(pkgs.has(key.replace(/:.*/, '')), key).toBe(s.kept);
    expect(sliced.tree.has('/usr/bin/dash')).toBe(false);
    expect(sliced.tree.has('/usr/bin/dpkg')).toBe(false);
    expect(sliced.tree.has('/usr/share/man')).toBe(false);
  });

  it('explains why libssl is kept', () => {
    expect(formatWhyKept(sliced, '/usr/lib/x86_64-linux-gnu/libssl.so.3')).toMatch(
      /library needed by \/usr\/lib\/python3\.11\/lib-dynload\/_ssl\..*\n.*Python standard library of \/usr\/bin\/python3\.11 \(python3\.11\)\n.*root \(entrypoint "python3"\)/,
    );
  });

  it('slices deterministically', async () => {
    const again = await sliceTree(set.assembled.tree, {
      entrypoint: ['python3'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      owners: set.assembled.owners,
    });
    expect(await dumpTree(again.tree)).toEqual(await dumpTree(sliced.tree));
  }, 60_000);

  it('keeps what a probe loads at run time (dlopen of _dbm) and its libraries', async () => {
    expect(sliced.tree.has('/usr/lib/x86_64-linux-gnu/libdb-5.3.so')).toBe(false);
    const probed = await sliceTree(set.assembled.tree, {
      entrypoint: ['python3'],
      owners: set.assembled.owners,
      probe: [['python3', '-c', 'import dbm.ndbm']],
      probeOptions: { tmpDir: work },
    });
    const dbm = [...probed.kept].find(([p]) => /lib-dynload\/_dbm\./.test(p));
    expect(dbm?.[1]).toMatchObject({ why: 'probe', detail: 'python3 -c import dbm.ndbm' });
    // libdb is both opened by the probe and needed by _dbm: the probe, which ran first, gives the reason.
    expect(['probe', 'elf-needed']).toContain(probed.kept.get('/usr/lib/x86_64-linux-gnu/libdb-5.3.so')?.why);
    const root = await unpack(probed.tree, work);
    const r = await runInSandbox(root, ['python3', '-c', 'import dbm.ndbm; print(dbm.ndbm.library)']);
    expect(r.stdout).toMatch(/Berkeley DB/);
  }, 120_000);

  it('fails a probe that fails on the unsliced image, naming the command', async () => {
    await expect(
      sliceTree(set.assembled.tree, {
        entrypoint: ['python3'],
        probe: [['python3', '-c', 'import no_such_module']],
        probeOptions: { tmpDir: work },
      }),
    ).rejects.toThrow(
      expect.objectContaining({
        code: 'SLICE_PROBE_FAILED',
        message: expect.stringMatching(/python3 -c import no_such_module.*status 1.*ModuleNotFoundError/s),
      }),
    );
  }, 120_000);
});
