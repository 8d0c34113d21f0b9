import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A forward proxy on 127.0.0.1 that speaks only `CONNECT host:port` (what curl, undici's ProxyAgent and pare's wire
 * reader send for every target), then pipes bytes both ways. It records each tunnel (authority and the
 * Proxy-Authorization it was given), and can refuse every CONNECT with a status instead.
 */

export interface Tunnel {
  readonly authority: string;
  readonly authorization: string | undefined;
}

export interface ConnectProxy {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly tunnels: Tunnel[];
  /** Answer every CONNECT with this status line instead of tunnelling (e.g. `403 Forbidden`). */
  refuse(status: string | undefined): void;
  close(): Promise<void>;
}

export async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: Tunnel[] = [];
  const sockets = new Set<Socket>();
  let refusal: string | undefined;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^CONNECT (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
      if (!m) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      const authorization = lines
        .find((l) => l.toLowerCase().startsWith('proxy-authorization:'))
        ?.slice('proxy-authorization:'.length)
        .trim();
      tunnels.push({ authority: m[1]!, authorization });
      if (refusal) {
        client.end(`HTTP/1.1 ${refusal}\r\ncontent-length: 0\r\n\r\n`);
        return;
      }
      const i = m[1]!.lastIndexOf(':');
      const upstream = connect({
        host: m[1]!.slice(0, i).replace(/^\[|\]$/g, ''),
        port: Number(m[1]!.slice(i + 1)),
      });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
    };
    client.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    refuse(status) {
      refusal = status;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
