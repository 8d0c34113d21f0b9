import { createHash } from 'node:crypto';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { listenLoopback } from './fault-proxy.ts';

/**
 * The OCI 1.1 referrers API (distribution-spec `GET /v2/<name>/referrers/<digest>` and the `OCI-Subject` answer to a
 * manifest PUT) in front of a real registry that lacks it (the Debian distribution 2.8): an HTTP proxy on 127.0.0.1
 * that passes every request through (Host kept, so `Location` URLs point back at it), remembers each manifest PUT
 * whose body has a `subject`, answers `OCI-Subject` for it, and serves the referrers list from what it saw. Every
 * request is logged with the status returned, so a test can tell the API path from the `sha256-<hex>` tag fallback.
 */

export interface ReferrersApiProxy {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  readonly log: { method: string; url: string; status: number }[];
  stop(): Promise<void>;
}

interface Listed {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Record<string, string>;
}

/** Starts the proxy in front of `upstream` (`127.0.0.1:PORT`, plain HTTP). */
export async function startReferrersApi(upstream: string): Promise<ReferrersApiProxy> {
  const [uhost, uport] = upstream.split(':');
  const log: ReferrersApiProxy['log'] = [];
  /** `<repository>@<subject digest>` → referrers, in the order they were pushed. */
  const referrers = new Map<string, Listed[]>();

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
    extra: Record<string, string>,
  ) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const up = request(
      { host: uhost, port: Number(uport), method, path: url, headers: req.headers },
      (ures) => {
        const status = ures.statusCode ?? 502;
        log.push({ method, url, status });
        res.writeHead(status, { ...ures.headers, ...(status < 300 ? extra : {}) });
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://proxy');
    const list = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (list && method === 'GET') {
      const want = url.searchParams.get('artifactType');
      const manifests = (referrers.get(`${list[1]}@${list[2]}`) ?? []).filter(
        (d) => !want || d.artifactType === want,
      );
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests,
      });
      log.push({ method, url: req.url ?? '', status: 200 });
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        ...(want ? { 'oci-filters-applied': 'artifactType' } : {}),
      });
      res.end(body);
      return;
    }
    const put = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (put && method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let extra: Record<string, string> = {};
        try {
          const m = JSON.parse(body.toString('utf8')) as {
            subject?: { digest: string };
            artifactType?: string;
            config?: { mediaType: string };
            annotations?: Record<string, string>;
          };
          if (m.subject?.digest) {
            const key = `${put[1]}@${m.subject.digest}`;
            const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
            const artifactType = m.artifactType ?? m.config?.mediaType;
            const entry: Listed = {
              mediaType: req.headers['content-type'] ?? 'application/vnd.oci.image.manifest.v1+json',
              digest,
              size: body.length,
              ...(artifactType ? { artifactType } : {}),
              ...(m.annotations ? { annotations: m.annotations } : {}),
            };
            const have = referrers.get(key) ?? [];
            if (!have.some((d) => d.digest === digest)) referrers.set(key, [...have, entry]);
            extra = { 'oci-subject': m.subject.digest };
          }
        } catch {
          // not JSON: the registry answers it
        }
        forward(req, res, body, extra);
      });
      return;
    }
    forward(req, res, undefined, {});
  };

  const server = await listenLoopback(handle);
  return { host: server.host, log, stop: server.stop };
}
