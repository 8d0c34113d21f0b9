import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { makeCertificate } from '../../test/helpers/registry-server.ts';
import { type BodySink, type WireResponse, wireRequest } from './wire.ts';

/** A server on 127.0.0.1 that answers every connection with `answer(socket, request head)`. */
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(answer: (s: Socket, head: string) => void, tls?: { cert: string; key: string }) {
  const onConnection = (s: Socket) => {
    let head = '';
    s.on('error', () => {});
    s.on('data', function onData(d) {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      answer(s, head);
    });
  };
  const server = tls
    ? createTlsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, onConnection)
    : createServer(onConnection);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/** Writes `parts` one after another with a pause between them, so the client sees them as separate reads. */
async function writeSlowly(s: Socket, parts: readonly (string | Uint8Array)[], end = true) {
  for (const p of parts) {
    s.write(p);
    await new Promise((r) => setTimeout(r, 2));
  }
  if (end) s.end();
}

/** Collects a body with `pump`, giving each chunk back after a tick (as a file write does). */
async function collect(res: WireResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink: BodySink = (c, release) => {
    parts.push(Buffer.from(c));
    setImmediate(release);
  };
  await res.pump(sink);
  return Buffer.concat(parts);
}

const get = (port: number, extra: Partial<Parameters<typeof wireRequest>[0]> = {}) =>
  wireRequest({
    url: new URL(`http://127.0.0.1:${port}/v2/app/blobs/sha256:x`),
    method: 'GET',
    headers: { authorization: 'Bearer t' },
    timeoutMs: 5000,
    ...extra,
  });

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out.filter((p) => p.length > 0);
}

function chunked(body: Uint8Array, sizes: readonly number[]): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  for (const n of sizes) {
    if (off >= body.length) break;
    const piece = body.subarray(off, off + Math.max(1, n));
    parts.push(
      Buffer.from(`${piece.length.toString(16)};ext=1\r\n`),
      Buffer.from(piece),
      Buffer.from('\r\n'),
    );
    off += piece.length;
  }
  if (off < body.length) {
    const rest = body.subarray(off);
    parts.push(Buffer.from(`${rest.length.toString(16)}\r\n`), Buffer.from(rest), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\nx-trailer: 1\r\n\r\n'));
  return Buffer.concat(parts);
}

describe('wireRequest', () => {
  it('sends the request line and headers, and reads a Content-Length body through backpressure', async () => {
    const body = randomBytes(5 << 20); // more than the reader's 2 MiB of buffers
    let seen = '';
    const port = await serve((s, head) => {
      seen = head;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nDocker-Content-Digest: d\r\n\r\n`);
      s.end(body);
    });
    const res = await get(port);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe('d');
    expect((await collect(res)).equals(body)).toBe(true);
    expect(seen).toMatch(/^GET \/v2\/app\/blobs\/sha256:x HTTP\/1\.1\r\n/);
    expect(seen).toMatch(/\r\nhost: 127\.0\.0\.1:\d+\r\n/);
    expect(seen).toMatch(/\r\nauthorization: Bearer t\r\n/);
    expect(seen).toMatch(/\r\nconnection: close\r\n/);
  });

  it('delivers any body split into any reads, framed by length, chunks or close (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.array(fc.nat(4000), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 900 }), { maxLength: 6 }),
        fc.constantFrom('length', 'chunked', 'close'),
        async (body, cuts, sizes, framing) => {
          const head =
            framing === 'length'
              ? `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`
              : framing === 'chunked'
                ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                : 'HTTP/1.1 200 OK\r\n\r\n';
          const wire = Buffer.concat([
            Buffer.from(head),
            framing === 'chunked' ? chunked(body, sizes) : Buffer.from(body),
          ]);
          const port = await serve((s) => void writeSlowly(s, split(wire, cuts)));
          const got = await collect(await get(port));
          expect(got.equals(Buffer.from(body))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('skips interim 1xx responses, in the same read or the next', async () => {
    const port = await serve(
      (s) =>
        void writeSlowly(s, [
          'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n',
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
        ]),
    );
    const res = await get(port);
    expect([res.status, res.headers.get('link')]).toEqual([200, null]);
    expect((await collect(res)).toString()).toBe('ok');
  });

  it('gives small bodies as copies through `body`, and no body for 204', async () => {
    const json = '{"errors":[{"code":"BLOB_UNKNOWN"}]}';
    let n = 0;
    const port = await serve((s) => {
      if (n++ === 0) s.end(`HTTP/1.1 404 Not Found\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
      else s.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
    const res = await get(port);
    expect([res.status, res.statusText]).toEqual([404, 'Not Found']);
    const parts: Uint8Array[] = [];
    for await (const c of res.body) parts.push(c);
    expect(Buffer.concat(parts).toString()).toBe(json);
    const empty = await get(port);
    expect(empty.status).toBe(204);
    expect((await collect(empty)).length).toBe(0);
  });

  it('fails a body cut short with HTTP_CONNECTION_CUT naming the host, after delivering what came', async () => {
    const port = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      s.write(Buffer.alloc(400, 7));
      setTimeout(() => s.destroy(), 20);
    });
    const res = await get(port);
    let got = 0;
    await expect(
      res.pump((c, release) => {
        got += c.length;
        release();
      }),
    ).rejects.toMatchObject({
      name: 'HttpError',
      code: 'HTTP_CONNECTION_CUT',
      host: `127.0.0.1:${port}`,
      message: `cannot read from "127.0.0.1:${port}": other side closed before the body ended`,
    });
    expect(got).toBe(400);
  });

  it('refuses what is not HTTP/1.1, oversized headers and bad chunk sizes with HTTP_PROTOCOL', async () => {
    const answers = [
      'SSH-2.0-OpenSSH\r\n\r\n',
      `HTTP/1.1 200 OK\r\nx: ${'a'.repeat(70 << 10)}\r\n\r\n`,
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    ];
    let n = 0;
    const port = await serve((s) => s.end(answers[n++] ?? ''));
    for (let i = 0; i < answers.length; i++)
      await expect(get(port)).rejects.toMatchObject({ code: 'HTTP_PROTOCOL', host: `127.0.0.1:${port}` });
    const port2 = await serve((s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
    await expect(collect(await get(port2))).rejects.toMatchObject({
      code: 'HTTP_PROTOCOL',
      message: expect.stringContaining(`"127.0.0.1:${port2}": bad chunk size`),
    });
  });

  it('times out a silent server with HTTP_STALLED and honours an abort signal', async () => {
    const port = await serve(() => {});
    await expect(get(port, { timeoutMs: 150 })).rejects.toMatchObject({
      code: 'HTTP_STALLED',
      message: `no data from 127.0.0.1:${port} for 150 ms`,
    });
    const ac = new AbortController();
    const p = get(port, { signal: ac.signal });
    ac.abort(Object.assign(new Error('gave up'), { code: 'REGISTRY_TIMEOUT' }));
    await expect(p).rejects.toMatchObject({ code: 'REGISTRY_TIMEOUT' });
  });

  it('ends the response with the error a sink throws', async () => {
    const port = await serve((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'));
    const res = await get(port);
    await expect(
      res.pump(() => {
        throw new Error('too long');
      }),
    ).rejects.toThrow('too long');
  });

  it('speaks TLS, verifying the server against the given trust', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-wire-'));
    const cert = makeCertificate(dir, 'server');
    const port = await serve((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), cert);
    const url = new URL(`https://127.0.0.1:${port}/v2/`);
    const { createSecureContext } = await import('node:tls');
    const trusted = createSecureContext({ ca: readFileSync(cert.cert) });
    const res = await wireRequest({
      url,
      method: 'GET',
      headers: {},
      timeoutMs: 5000,
      tls: { rejectUnauthorized: true, secureContext: trusted },
    });
    expect((await collect(res)).toString()).toBe('ok');
    await expect(
      wireRequest({ url, method: 'GET', headers: {}, timeoutMs: 5000, tls: { rejectUnauthorized: true } }),
    ).rejects.toMatchObject({
      code: 'HTTP_CONNECTION_FAILED',
      message: expect.stringContaining(`cannot talk to "127.0.0.1:${port}"`),
      // the socket's own error stays the cause: its code is what the retry and TLS rules read
      cause: expect.objectContaining({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    });
    const insecure = await wireRequest({
      url,
      method: 'GET',
      headers: {},
      timeoutMs: 5000,
      tls: { rejectUnauthorized: false },
    });
    expect((await collect(insecure)).toString()).toBe('ok');
  });
});
