import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of a real registry. Requests pass through unchanged (the Host
 * header too, so the registry's `Location` URLs point back at the proxy) unless a rule matches; a matching rule
 * fires `times` times and then stops matching. Faults:
 * - `status`: answer with that status (and headers) without asking the registry (a 500, a 429 with Retry-After);
 * - `cut`: forward headers and the first `afterBytes` bytes of the body, then destroy the socket (a cut connection);
 * - `corrupt`: forward with one byte of the body flipped, same length (a wrong-digest body).
 * Every request is logged with its Range header and what was done, so tests can check that pare resumed or retried.
 */

export type Fault =
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Readonly<Record<string, string>> }
  | { readonly kind: 'cut'; readonly afterBytes: number }
  | { readonly kind: 'corrupt' };

export interface FaultRule {
  readonly match: (req: { method: string; url: string }) => boolean;
  readonly fault: Fault;
  times: number;
}

export interface ProxyLogEntry {
  readonly method: string;
  readonly url: string;
  readonly range: string | undefined;
  readonly fault: Fault['kind'] | undefined;
}

export interface FaultProxy {
  readonly host: string;
  readonly log: ProxyLogEntry[];
  /** Adds a rule that fires `times` times (default 1). */
  add(match: FaultRule['match'], fault: Fault, times?: number): void;
  stop(): Promise<void>;
}

/** Matches GETs of blob `digest` (or of any blob when omitted). */
export function blobGet(digest?: string): FaultRule['match'] {
  return (r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.url) && (!digest || r.url.includes(digest));
}

/** Starts a proxy in front of `upstream` (`127.0.0.1:PORT`, plain HTTP). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const [uhost, uport] = upstream.split(':');
  const rules: FaultRule[] = [];
  const log: ProxyLogEntry[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const rule = rules.find((r) => r.times > 0 && r.match({ method, url }));
    if (rule) rule.times--;
    const fault = rule?.fault;
    log.push({ method, url, range: req.headers.range, fault: fault?.kind });
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${fault.status}` }] }));
      return;
    }
    const up = request(
      { host: uhost, port: Number(uport), method, path: url, headers: req.headers },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        if (fault?.kind === 'cut') {
          let sent = 0;
          ures.on('data', (c: Buffer) => {
            if (sent >= fault.afterBytes) return;
            const part = c.subarray(0, fault.afterBytes - sent);
            sent += part.length;
            res.write(part);
            if (sent >= fault.afterBytes) {
              ures.destroy();
              // Flush what was written, then drop the connection mid-body.
              res.socket?.end();
              setTimeout(() => res.socket?.destroy(), 20);
            }
          });
          return;
        }
        if (fault?.kind === 'corrupt') {
          let flipped = false;
          ures.on('data', (c: Buffer) => {
            if (!flipped && c.length > 0) {
              const copy = Buffer.from(c);
              copy[Math.floor(copy.length / 2)]! ^= 0xff;
              flipped = true;
              res.write(copy);
            } else res.write(c);
          });
          ures.on('end', () => res.end());
          return;
        }
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };

  const server = await listenLoopback(handle);
  return {
    host: server.host,
    log,
    add(match, fault, times = 1) {
      rules.push({ match, fault, times });
    },
    stop: server.stop,
  };
}

/** Serves `handle` on 127.0.0.1 at a free port; `stop()` drops open connections and closes the server. */
export async function listenLoopback(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ readonly host: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
