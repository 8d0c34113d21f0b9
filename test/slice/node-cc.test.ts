import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { writeLocal } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { readDpkgDatabase } from '../../src/sbom/index.ts';
import { formatSliceSummary, type SliceResult, sliceReport, sliceTree } from '../../src/slice/index.ts';
import { pare } from '../helpers/cli.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';
import { elfFiles, runInSandbox, treeBytes, unpack, unresolvedClosures } from './check.ts';
import { aptAvailable, type PackageSet, packageSet } from './debs.ts';

/**
 * The nodejs package set sliced for `node`, running an https client against a local TLS server whose self-signed
 * certificate the test makes with openssl; and a C program using OpenSSL (compiled here with gcc) on libc6, libssl3,
 * libgcc-s1 and libstdc++6, which must run with nothing but its closure.
 */

const peers = peersOrSkip('bwrap', 'apt-get', 'openssl', 'gcc');
const skip = peers.skip || !aptAvailable();

function report(name: string, set: PackageSet, sliced: SliceResult): void {
  const before = treeBytes(set.assembled.tree);
  const after = treeBytes(sliced.tree);
  console.log(
    `${name} set: ${set.files.length} packages, unsliced ${(before / 2 ** 20).toFixed(1)} MiB, sliced ${(after / 2 ** 20).toFixed(1)} MiB (${((100 * after) / before).toFixed(1)}%)\n${formatSliceSummary(sliced)}`,
  );
}

describe.skipIf(skip)('slicing the nodejs package set', () => {
  let set: PackageSet;
  let sliced: SliceResult;
  let server: Server;
  let port = 0;
  const work = skip ? '' : tempDir('pare-slice-node-');

  beforeAll(async () => {
    set = await packageSet('nodejs');
    sliced = await sliceTree(set.assembled.tree, { entrypoint: ['node'], owners: set.assembled.owners });
    report('nodejs', set, sliced);
    const certs = join(work, 'certs');
    mkdirSync(certs);
    execFileSync(
      peers.paths.openssl!,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(certs, 'key.pem'),
        '-out',
        join(certs, 'ca.pem'),
      ],
      { stdio: 'pipe' },
    );
    server = createServer(
      { key: readFileSync(join(certs, 'key.pem')), cert: readFileSync(join(certs, 'ca.pem')) },
      (_req, res) => res.end('pong over tls'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  }, 300_000);

  afterAll(() => server?.close());

  it('leaves every kept ELF file with a closure that resolves inside the image', async () => {
    const { checked, problems } = await unresolvedClosures(sliced.tree);
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(10);
    expect(sliced.after.bytes).toBeLessThan(sliced.before.bytes);
  });

  it('runs an https client against a local TLS server in the sandbox', async () => {
    const root = await unpack(sliced.tree, work);
    const client = `require('https').get('https://127.0.0.1:${port}/', (res) => {
      let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => { console.log(res.statusCode, body, process.versions.openssl); });
    }).on('error', (e) => { console.error(e); process.exit(2); });`;
    const r = await runInSandbox(root, ['node', '-e', client], {
      net: true,
      env: { NODE_EXTRA_CA_CERTS: '/certs/ca.pem' },
      volumes: [{ host: join(work, 'certs'), container: '/certs', readOnly: true }],
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^200 pong over tls 3\./);
    expect(r.code).toBe(0);
  }, 60_000);
});

const PROGRAM = `#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
int main(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return 1;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest("abc", 3, md, &n, EVP_sha256(), NULL)) return 2;
  printf("%s sha256(abc)=%02x%02x%02x%02x\\n", OpenSSL_version(OPENSSL_VERSION), md[0], md[1], md[2], md[3]);
  SSL_CTX_free(ctx);
  return 0;
}
`;

describe.skipIf(skip)('slicing a C program on libc6, libssl3, libgcc-s1, libstdc++6', () => {
  let set: PackageSet;
  let sliced: SliceResult;
  const work = skip ? '' : tempDir('pare-slice-cc-');

  beforeAll(async () => {
    set = await packageSet('cc');
    writeFileSync(join(work, 'tlsprobe.c'), PROGRAM);
    execFileSync(
      peers.paths.gcc!,
      ['-O2', '-o', join(work, 'tlsprobe'), join(work, 'tlsprobe.c'), '-lssl', '-lcrypto'],
      {
        stdio: 'pipe',
      },
    );
    const b = TreeBuilder.from(set.assembled.tree);
    b.put(
      '/usr/local/bin/tlsprobe',
      fileEntry(bufferContent(readFileSync(join(work, 'tlsprobe'))), { mode: 0o755 }),
    );
    sliced = await sliceTree(b.build(), {
      entrypoint: ['/usr/local/bin/tlsprobe'],
      owners: set.assembled.owners,
    });
    report('cc', set, sliced);
  }, 300_000);

  it('keeps exactly the program, the loader, libc, libssl and libcrypto as ELF files', async () => {
    expect(await elfFiles(sliced.tree)).toEqual([
      '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      '/usr/lib/x86_64-linux-gnu/libc.so.6',
      '/usr/lib/x86_64-linux-gnu/libcrypto.so.3',
      '/usr/lib/x86_64-linux-gnu/libssl.so.3',
      '/usr/local/bin/tlsprobe',
    ]);
    expect((await unresolvedClosures(sliced.tree)).problems).toEqual([]);
    const pkgs = (await readDpkgDatabase(sliced.tree)).map((p) => p.name);
    expect(pkgs).not.toContain('libstdc++6');
    expect(pkgs).not.toContain('libgcc-s1');
    expect(pkgs).toEqual(expect.arrayContaining(['libc6', 'libssl3']));
  });

  it('runs in the sandbox with only its closure', async () => {
    const root = await unpack(sliced.tree, work);
    const r = await runInSandbox(root, ['/usr/local/bin/tlsprobe']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^OpenSSL 3\.\S+ .* sha256\(abc\)=ba7816bf\n$/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('pare why-kept explains a library from the image itself and from a stored report', async () => {
    const layout = join(work, 'layout');
    const image = buildImage({
      layers: [layerFromTree(sliced.tree)],
      platform: { os: 'linux', architecture: 'amd64' },
      config: { Entrypoint: ['/usr/local/bin/tlsprobe'], Env: ['PATH=/usr/bin:/bin'] },
    });
    await writeLocal({ transport: 'oci', path: layout, tag: 'latest' }, { kind: 'image', image });
    const fromImage = pare(['why-kept', '/lib/x86_64-linux-gnu/libcrypto.so.3', `oci:${layout}:latest`]);
    expect(fromImage.stderr).toBe('');
    expect(fromImage.stdout).toBe(
      [
        '/usr/lib/x86_64-linux-gnu/libcrypto.so.3',
        '  ← library needed by /usr/local/bin/tlsprobe (libcrypto.so.3)',
        '    ← root (entrypoint "/usr/local/bin/tlsprobe")',
        '',
      ].join('\n'),
    );
    expect(fromImage.code).toBe(0);
    writeFileSync(join(work, 'slice-report.json'), JSON.stringify(sliceReport(sliced)));
    const fromReport = pare(['why-kept', '/usr/lib/x86_64-linux-gnu/libcrypto.so.3', work]);
    expect(fromReport.stdout).toBe(fromImage.stdout);
    const dropped = pare([
      'why-kept',
      '/usr/lib/x86_64-linux-gnu/libstdc++.so.6',
      join(work, 'slice-report.json'),
    ]);
    expect(dropped).toMatchObject({
      code: 1,
      stdout: '/usr/lib/x86_64-linux-gnu/libstdc++.so.6: not kept (nothing in the image needs it)\n',
    });
    const bad = pare(['why-kept', 'relative/path', work]);
    expect(bad.code).toBe(2);
  }, 60_000);
});
