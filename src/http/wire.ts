import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { HttpError, type HttpErrorCode } from '../errors.ts';
import type { ProxyRoute } from './proxy.ts';

/**
 * A minimal HTTP/1.1 client for the one request that carries nearly all of a pull's bytes: `GET` of a blob. It reads
 * the socket into a small pool of reusable 256 KiB buffers (`net.connect({ onread })`) and hands the body to a sink
 * that gives each buffer back when it is done with it (after the file write), with no Readable stream in between.
 *
 * Why hand-written: Node's socket reads allocate a fresh 64 KiB buffer per read and push it through a Readable; with
 * undici or node:http on top, receiving 200 MiB from a loopback registry cost 0.36–0.41 s of CPU against 0.15 s for
 * the same socket read into reused buffers (measured on a 2-core machine; bench/registry.bench.ts shows the whole
 * pull). No HTTP library exposes reads into caller-owned memory. Everything that is not a blob body (manifests,
 * tokens, uploads) stays on undici; this client is used only where the caller asks for it (`RegistryRequest.wire`),
 * and it sends `Connection: close`, so there is no pooling or pipelining to get wrong.
 *
 * Understood: status line, headers (≤ 64 KiB), bodies framed by Content-Length, by chunked transfer coding (trailers
 * skipped) or by the connection's close; no body for HEAD, 204 and 304; interim 1xx responses are skipped. Errors
 * carry a `code` like the socket errors they stand for (`ECONNRESET` for a body cut short, `ETIMEDOUT` for a stalled
 * one, `EPROTO` for what is not HTTP/1.1), so callers can resume with `Range`.
 *
 * Through a proxy (`proxy`), the request goes through a `CONNECT host:port` tunnel, for `http:` and `https:` alike (as
 * undici's ProxyAgent does); the tunnel (and TLS over it) is then read with 'data' events, its chunks handed over like
 * pooled reads: a socket that already exists cannot be given pooled read buffers.
 */

/** Where a request goes. */
export interface WireRequest {
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Readonly<Record<string, string>>;
  /** Longest pause while connecting or reading. */
  readonly timeoutMs: number;
  /** Aborts the request (connect, headers or body) with its reason. */
  readonly signal?: AbortSignal;
  /** For `https:` URLs: the trust to verify the server with. */
  readonly tls?: { readonly secureContext?: SecureContext; readonly rejectUnauthorized: boolean };
  /** Tunnel through this proxy (see proxy.ts). */
  readonly proxy?: ProxyRoute;
}

/**
 * Receives body bytes. `chunk` is a view into a pooled buffer: the sink must call `release()` once it no longer needs
 * the bytes (at once when it copies or hashes them, after the write when it writes them). Throwing ends the response
 * with that error.
 */
export type BodySink = (chunk: Uint8Array, release: () => void) => void;

export interface WireResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  /** The body as copied chunks (small bodies: errors, redirects). */
  readonly body: AsyncIterable<Uint8Array>;
  /** Streams the body into `sink`; resolves when it has ended and every chunk was released. */
  pump(sink: BodySink): Promise<void>;
  /** Closes the connection and drops the body. */
  cancel(): Promise<void>;
}

const BUFFER_BYTES = 256 << 10;
/** Buffers a connection may have out with the sink before it stops reading (2 MiB). */
const MAX_OUT = 8;
const MAX_HEADER_BYTES = 64 << 10;

/** Returns the HttpError for a failure on the connection to `host` (named in the message unless it already is). */
function wireError(host: string, message: string, code: HttpErrorCode): HttpError {
  return new HttpError(code, message.includes(host) ? message : `cannot read from "${host}": ${message}`, {
    host,
  });
}

/** One pooled buffer; `refs` counts the views of it the sink still holds. */
interface Slot {
  readonly buf: Buffer;
  refs: number;
  /** False for the copy that holds the head's tail: it does not go back to the pool. */
  readonly pooled: boolean;
}

type Framing =
  | { kind: 'none' }
  | { kind: 'length'; left: number }
  | { kind: 'close' }
  | { kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: string };

/** Sends `req` and resolves with the response once its headers have arrived; the body waits for `pump` or `body`. */
export async function wireRequest(req: WireRequest): Promise<WireResponse> {
  const { url } = req;
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:')
    throw new HttpError(
      'HTTP_REQUEST_INVALID',
      `cannot send a request to ${JSON.stringify(url.href)}: pare speaks http and https, not ${url.protocol}`,
      { host: url.host },
    );
  const lines = [`${req.method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [k, v] of Object.entries({ ...req.headers, connection: 'close' })) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v))
      throw new HttpError(
        'HTTP_REQUEST_INVALID',
        `cannot send a request to "${url.host}": header ${JSON.stringify(k)} contains a line break`,
        { host: url.host },
      );
    if (k.toLowerCase() !== 'host') lines.push(`${k}: ${v}`);
  }
  const head = `${lines.join('\r\n')}\r\n\r\n`;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || (https ? 443 : 80));
  const tunnel = req.proxy ? await openTunnel(req, `${url.hostname}:${port}`) : undefined;

  const free: Buffer[] = [];
  let out = 0;
  let current: Slot | undefined;
  const take = (): Buffer => free.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);

  return new Promise<WireResponse>((resolveHead, rejectHead) => {
    let socket: Socket;
    let headBytes: Buffer[] = [];
    let headLength = 0;
    let response: WireResponse | undefined;
    let framing: Framing = { kind: 'none' };
    let sink: BodySink | undefined;
    /** Body views read before a sink was attached. */
    const pending: { view: Uint8Array; slot: Slot }[] = [];
    let ended = false;
    let failed: Error | undefined;
    let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
    let paused = false;

    const finish = (e?: Error) => {
      if (e && !failed && !ended) failed = e;
      if (!e) ended = true;
      if (!response) {
        rejectHead(
          failed ??
            wireError(url.host, 'connection closed before the response headers', 'HTTP_CONNECTION_CUT'),
        );
        return;
      }
      maybeSettle();
    };
    const maybeSettle = () => {
      if (!settle) return;
      if (failed) {
        settle.reject(failed);
        settle = undefined;
      } else if (ended && pending.length === 0 && out === 0) {
        settle.resolve();
        settle = undefined;
      }
    };
    const release = (slot: Slot) => () => {
      if (--slot.refs === 0) {
        out--;
        if (slot.pooled) free.push(slot.buf);
        if (paused && out < MAX_OUT && !socket.destroyed) {
          paused = false;
          socket.resume();
        }
        maybeSettle();
      }
    };
    const deliver = (view: Uint8Array, slot: Slot) => {
      if (view.length === 0) return;
      if (slot.refs++ === 0) out++;
      if (!sink) {
        pending.push({ view, slot });
        return;
      }
      try {
        sink(view, release(slot));
      } catch (e) {
        sinkFailed(e);
      }
    };
    /** A sink's error ends the response even when all bytes have arrived. */
    const sinkFailed = (e: unknown) => {
      failed ??=
        e instanceof Error
          ? e
          : new HttpError(
              'HTTP_ABORTED',
              `cannot read from "${url.host}": the body's reader failed: ${String(e)}`,
              { host: url.host },
            );
      socket.destroy();
      finish(failed);
    };
    const fail = (e: Error) => {
      if (!failed && !ended) failed = e;
      socket.destroy();
      finish(e);
    };

    /** Parses the head in `headBytes`; returns the offset of the body in the last buffer, or -1 for more. */
    const parseHead = (): boolean => {
      const all = Buffer.concat(headBytes, headLength);
      const end = all.indexOf('\r\n\r\n');
      if (end > MAX_HEADER_BYTES || (end < 0 && headLength > MAX_HEADER_BYTES)) {
        fail(wireError(url.host, 'response headers larger than 64 KiB', 'HTTP_PROTOCOL'));
        return false;
      }
      if (end < 0) return false;
      const text = all.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(text[0] ?? '');
      if (!m) {
        fail(
          wireError(
            url.host,
            `not an HTTP/1.1 response: ${JSON.stringify((text[0] ?? '').slice(0, 80))}`,
            'HTTP_PROTOCOL',
          ),
        );
        return false;
      }
      const status = Number(m[1]);
      if (status >= 100 && status < 200) {
        // An interim response (100 Continue, 103 Early Hints): the real one follows.
        const after = all.subarray(end + 4);
        headBytes = after.length > 0 ? [Buffer.from(after)] : [];
        headLength = after.length;
        return after.length > 0 ? parseHead() : false;
      }
      const fields = new Map<string, string>();
      for (const line of text.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        fields.set(k, fields.has(k) ? `${fields.get(k)}, ${v}` : v);
      }
      const te = fields.get('transfer-encoding')?.toLowerCase();
      const cl = fields.get('content-length');
      if (req.method === 'HEAD' || status === 204 || status === 304) framing = { kind: 'none' };
      else if (te && te.split(',').pop()?.trim() === 'chunked')
        framing = { kind: 'chunked', state: 'size', left: 0, line: '' };
      else if (cl !== undefined) {
        if (!/^\d+$/.test(cl)) {
          fail(wireError(url.host, `bad Content-Length ${JSON.stringify(cl)}`, 'HTTP_PROTOCOL'));
          return false;
        }
        framing = { kind: 'length', left: Number(cl) };
      } else framing = { kind: 'close' };
      response = {
        status,
        statusText: m[2] ?? '',
        headers: { get: (name) => fields.get(name.toLowerCase()) ?? null },
        body: copies(),
        pump: (s) => {
          if (sink)
            return Promise.reject(
              new HttpError(
                'HTTP_REQUEST_INVALID',
                `cannot read from "${url.host}": the body was already taken`,
                { host: url.host },
              ),
            );
          sink = s;
          return new Promise<void>((resolve, reject) => {
            settle = { resolve, reject };
            for (const { view, slot } of pending.splice(0)) {
              try {
                sink?.(view, release(slot));
              } catch (e) {
                sinkFailed(e);
                break;
              }
            }
            if (paused && out < MAX_OUT && !socket.destroyed) {
              paused = false;
              socket.resume();
            }
            maybeSettle();
          });
        },
        cancel: async () => {
          if (!ended) {
            failed ??= wireError(url.host, 'response cancelled', 'HTTP_ABORTED');
            socket.destroy();
          }
          for (const { slot } of pending.splice(0)) release(slot)();
        },
      };
      const rest = all.subarray(end + 4);
      headBytes = [];
      resolveHead(response);
      if (framing.kind === 'length' && framing.left === 0) framing = { kind: 'none' };
      if (framing.kind === 'none') {
        ended = true;
        socket.destroy();
        return true;
      }
      if (rest.length > 0) {
        // The first body bytes came with the head, in the head's own copy.
        const slot: Slot = { buf: rest, refs: 1, pooled: false };
        out++;
        body(rest, slot);
        release(slot)();
      }
      return true;
    };

    /** Feeds body bytes through the framing. */
    const body = (data: Uint8Array, slot: Slot) => {
      let off = 0;
      while (off < data.length && !ended && !failed) {
        const f = framing;
        if (f.kind === 'close') {
          deliver(data.subarray(off), slot);
          return;
        }
        if (f.kind === 'length') {
          const n = Math.min(f.left, data.length - off);
          deliver(data.subarray(off, off + n), slot);
          off += n;
          f.left -= n;
          if (f.left === 0) {
            ended = true;
            socket.destroy();
          }
          continue;
        }
        if (f.kind === 'chunked') {
          if (f.state === 'data') {
            const n = Math.min(f.left, data.length - off);
            deliver(data.subarray(off, off + n), slot);
            off += n;
            f.left -= n;
            if (f.left === 0) f.state = 'data-end';
            continue;
          }
          // size line, CRLF after data, trailer lines: byte by byte (they are short)
          const c = data[off++]!;
          if (c !== 0x0a) {
            if (c !== 0x0d) f.line += String.fromCharCode(c);
            if (f.line.length > 4096)
              fail(wireError(url.host, 'chunk header line too long', 'HTTP_PROTOCOL'));
            continue;
          }
          const line = f.line;
          f.line = '';
          if (f.state === 'data-end') {
            if (line !== '') fail(wireError(url.host, 'missing CRLF after a chunk', 'HTTP_PROTOCOL'));
            f.state = 'size';
          } else if (f.state === 'size') {
            const hex = line.split(';')[0]!.trim();
            if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
              fail(
                wireError(url.host, `bad chunk size ${JSON.stringify(hex.slice(0, 20))}`, 'HTTP_PROTOCOL'),
              );
              return;
            }
            f.left = Number.parseInt(hex, 16);
            f.state = f.left === 0 ? 'trailer' : 'data';
          } else if (line === '') {
            ended = true;
            socket.destroy();
          }
          continue;
        }
        return;
      }
    };

    /**
     * The body as copies, for callers that keep chunks (or write them and come back): a pooled buffer goes back when
     * its copy is taken, so a consumer slower than the network stops the reading (at most MAX_OUT buffers out).
     */
    async function* copies(): AsyncGenerator<Uint8Array> {
      const queue: { copy: Buffer; release: () => void }[] = [];
      let wake: (() => void) | undefined;
      const done = response!.pump((chunk, rel) => {
        queue.push({ copy: Buffer.from(chunk), release: rel });
        wake?.();
      });
      let over = false;
      let error: unknown;
      done.then(
        () => {
          over = true;
          wake?.();
        },
        (e) => {
          over = true;
          error = e;
          wake?.();
        },
      );
      try {
        for (;;) {
          const item = queue.shift();
          if (item) {
            item.release();
            yield item.copy;
            continue;
          }
          if (over) {
            if (error) throw error;
            return;
          }
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
        }
      } finally {
        for (const item of queue.splice(0)) item.release();
        if (!over) await response!.cancel();
      }
    }

    const onread = {
      buffer: () => {
        const buf = take();
        current = { buf, refs: 0, pooled: true };
        return buf;
      },
      callback: (n: number, buf: Uint8Array): boolean => {
        const slot: Slot = current?.buf === buf ? current : { buf: buf as Buffer, refs: 0, pooled: true };
        if (!response) {
          headBytes.push(Buffer.from(buf.subarray(0, n)));
          headLength += n;
          if (slot.pooled) free.push(slot.buf);
          if (!parseHead() || sink || ended || failed) return true;
          paused = true; // wait for pump() or body
          return false;
        }
        out++;
        slot.refs++;
        body(buf.subarray(0, n), slot);
        release(slot)();
        if (!sink || out >= MAX_OUT) {
          paused = true;
          return false;
        }
        return true;
      },
    };

    const onAbort = () => {
      const reason = req.signal?.reason;
      fail(reason instanceof Error ? reason : wireError(url.host, 'request aborted', 'HTTP_ABORTED'));
    };
    const opts = { host, port, onread, timeout: req.timeoutMs };
    const { connect: tlsConnect } = process.getBuiltinModule('node:tls');
    const { connect: netConnect, isIP } = process.getBuiltinModule('node:net');
    socket = https
      ? tlsConnect({
          ...(tunnel ? { socket: tunnel } : opts),
          ...(isIP(host) ? {} : { servername: host }),
          ALPNProtocols: ['http/1.1'],
          rejectUnauthorized: req.tls?.rejectUnauthorized ?? true,
          ...(req.tls?.secureContext ? { secureContext: req.tls.secureContext } : {}),
        })
      : (tunnel ?? netConnect(opts));
    socket.setNoDelay(true);
    if (tunnel) {
      // The tunnel is connected already and reads into Node's own buffers (a socket cannot be given pooled read
      // buffers after it was made, nor can TLS over it): hand each one over like a pooled read.
      socket.setTimeout(req.timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        current = { buf: chunk, refs: 0, pooled: false };
        if (!onread.callback(chunk.length, chunk)) socket.pause();
      });
      if (https) socket.once('secureConnect', () => socket.write(head));
      else socket.write(head);
      socket.resume();
    } else socket.once(https ? 'secureConnect' : 'connect', () => socket.write(head));
    socket.on('timeout', () =>
      fail(wireError(url.host, `no data from ${url.host} for ${req.timeoutMs} ms`, 'HTTP_STALLED')),
    );
    // The socket's own error (refused, reset, a certificate) stays the cause, so its code is what callers look at.
    socket.on('error', (e) =>
      fail(
        new HttpError('HTTP_CONNECTION_FAILED', `cannot talk to "${url.host}": ${e.message}`, {
          cause: e,
          host: url.host,
        }),
      ),
    );
    socket.on('close', () => {
      req.signal?.removeEventListener('abort', onAbort);
      if (ended || failed) return finish();
      if (response && framing.kind === 'close') return finish();
      fail(
        wireError(
          url.host,
          response
            ? 'other side closed before the body ended'
            : 'other side closed before the response headers',
          'HTTP_CONNECTION_CUT',
        ),
      );
    });
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Returns a socket tunnelled to `authority` (`host:port`) through `req.proxy` with `CONNECT`, paused, with no
 * listeners left on it. Fails with `EPROXY` when the proxy refuses (its status in the message), like a socket error
 * otherwise.
 */
function openTunnel(req: WireRequest, authority: string): Promise<Socket> {
  const proxy = req.proxy!;
  const { connect } = process.getBuiltinModule('node:net');
  const host = proxy.url.hostname.startsWith('[') ? proxy.url.hostname.slice(1, -1) : proxy.url.hostname;
  return new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port: Number(proxy.url.port || 80), timeout: req.timeoutMs });
    let head = Buffer.alloc(0);
    const done = () => {
      s.removeAllListeners();
      req.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (e: Error) => {
      done();
      s.on('error', () => {});
      s.destroy();
      reject(e);
    };
    const onAbort = () => {
      const reason = req.signal?.reason;
      fail(reason instanceof Error ? reason : wireError(proxy.url.host, 'request aborted', 'HTTP_ABORTED'));
    };
    const where = `proxy "${proxy.url.host}"`;
    s.once('connect', () => {
      s.write(
        `CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n${proxy.authorization ? `proxy-authorization: ${proxy.authorization}\r\n` : ''}\r\n`,
      );
    });
    s.on('data', (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEADER_BYTES)
          fail(wireError(proxy.url.host, `${where} sent headers larger than 64 KiB`, 'HTTP_PROTOCOL'));
        return;
      }
      const line = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? Number.NaN);
      if (status !== 200) {
        fail(
          wireError(
            proxy.url.host,
            `${where} answered ${JSON.stringify(line.slice(0, 80))} to CONNECT ${authority}`,
            'HTTP_PROXY_FAILED',
          ),
        );
        return;
      }
      if (head.length > end + 4) {
        fail(wireError(proxy.url.host, `${where} sent bytes after its CONNECT answer`, 'HTTP_PROTOCOL'));
        return;
      }
      s.pause();
      done();
      s.setTimeout(0);
      resolve(s);
    });
    s.on('timeout', () =>
      fail(wireError(proxy.url.host, `no answer from ${where} for ${req.timeoutMs} ms`, 'HTTP_STALLED')),
    );
    s.on('error', (e) =>
      fail(
        new HttpError('HTTP_PROXY_FAILED', `cannot reach ${where}: ${e.message}`, {
          cause: e,
          host: proxy.url.host,
        }),
      ),
    );
    s.on('close', () =>
      fail(
        wireError(
          proxy.url.host,
          `${where} closed the connection before answering CONNECT`,
          'HTTP_CONNECTION_CUT',
        ),
      ),
    );
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
