import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { peer } from './peers.ts';

/**
 * Starts the real distribution registry (`registry serve config.yml`, the Debian `docker-registry` 2.8) on
 * 127.0.0.1 at a free port, in one of three set-ups:
 * - `none`: plain HTTP, no auth;
 * - `basic`: HTTPS with a self-signed certificate made by `openssl`, htpasswd (bcrypt) users;
 * - `token`: plain HTTP registry delegating to a token server written here (ES256 JWTs with an `x5c` chain that the
 *   registry checks against `rootcertbundle`), which grants requested scopes to known users and nothing to anonymous.
 * Everything lives in a temp directory removed by `stop()`.
 */

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface TokenRequest {
  readonly method: string;
  readonly account: string | undefined;
  readonly scopes: readonly string[];
  readonly status: number;
}

export interface RegistryServer {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  readonly url: string;
  readonly auth: RegistryAuth;
  readonly tls: boolean;
  /** PEM of the self-signed certificate (TLS set-ups). */
  readonly caFile: string | undefined;
  /** A directory holding `ca.crt`, for skopeo's `--*-cert-dir`. */
  readonly certDir: string | undefined;
  readonly username: string;
  readonly password: string;
  /** The registry's storage root. */
  readonly storage: string;
  /** Requests the token server answered (token set-up only). */
  readonly tokenRequests: TokenRequest[];
  /** A refresh token the token server accepts for `username` (token set-up). */
  readonly refreshToken: string;
  /** What the registry wrote to stderr (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  readonly auth?: RegistryAuth;
  /** Default: true for `basic`, false otherwise. */
  readonly tls?: boolean;
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Writes a self-signed P-256 certificate for 127.0.0.1/localhost and returns the file paths. */
export function makeCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'pipe' },
  );
  return { cert, key };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

interface TokenServer {
  readonly url: string;
  readonly requests: TokenRequest[];
  readonly server: Server;
}

async function startTokenServer(opts: {
  keyFile: string;
  certFile: string;
  service: string;
  issuer: string;
  users: Record<string, string>;
  refreshTokens: Record<string, string>;
}): Promise<TokenServer> {
  const key = createPrivateKey(readFileSync(opts.keyFile));
  const der = readFileSync(opts.certFile, 'utf8')
    .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
    .replace(/\s+/g, '');
  const requests: TokenRequest[] = [];
  const issue = (account: string | undefined, scopes: string[]) => {
    const now = Math.floor(Date.now() / 1000);
    const access = account
      ? scopes.map((s) => {
          const parts = s.split(':');
          const actions = parts.pop() ?? '';
          const type = parts.shift() ?? '';
          return { type, name: parts.join(':'), actions: actions.split(',').filter(Boolean) };
        })
      : [];
    const header = { typ: 'JWT', alg: 'ES256', x5c: [der] };
    const claims = {
      iss: opts.issuer,
      sub: account ?? '',
      aud: opts.service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s signature, not DER (RFC 7518 §3.4).
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (u.pathname !== '/token') return send(res, 404, {});
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        let account: string | undefined;
        if (form.get('grant_type') === 'refresh_token')
          account = opts.refreshTokens[form.get('refresh_token') ?? ''];
        else if (form.get('grant_type') === 'password') {
          const u2 = form.get('username') ?? '';
          if (opts.users[u2] === form.get('password')) account = u2;
        }
        const status = account ? 200 : 401;
        requests.push({ method: 'POST', account, scopes, status });
        if (!account) return send(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad grant' }] });
        return send(res, 200, { access_token: issue(account, scopes), expires_in: 300 });
      }
      const scopes = u.searchParams.getAll('scope');
      let account: string | undefined;
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const [user, ...rest] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
        if (opts.users[user ?? ''] !== rest.join(':')) {
          requests.push({ method: 'GET', account: user, scopes, status: 401 });
          return send(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad user or password' }] });
        }
        account = user;
      }
      requests.push({ method: 'GET', account, scopes, status: 200 });
      return send(res, 200, {
        token: issue(account, scopes),
        expires_in: 300,
        issued_at: new Date().toISOString(),
      });
    });
  };
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}/token`, requests, server };
}

async function waitReady(
  host: string,
  port: number,
  tls: boolean,
  ca: string | undefined,
  proc: ChildProcess,
  logs: () => string,
) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`registry exited with ${proc.exitCode}:\n${logs()}`);
    const ok = await new Promise<boolean>((resolve) => {
      if (tls) {
        const r = httpsRequest({ host, port, path: '/v2/', ca, method: 'GET', timeout: 1000 }, (res) => {
          res.resume();
          resolve(true);
        });
        r.on('error', () => resolve(false));
        r.end();
      } else {
        const s = connect(port, host, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`registry on ${host}:${port} did not start within 20 s:\n${logs()}`);
}

/** Starts a registry; see the module comment. Throws when the `registry` peer is missing (use peersOrSkip first). */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryServer> {
  const bin = peer('registry');
  if (!bin) throw new Error('the distribution registry ("registry" / "docker-registry") is not installed');
  const auth = options.auth ?? 'none';
  const tls = options.tls ?? auth === 'basic';
  const dir = mkdtempSync(join(tmpdir(), `pare-registry-${auth}-`));
  const storage = join(dir, 'storage');
  mkdirSync(storage);
  const username = 'pare-user';
  const password = randomBytes(9).toString('base64url');
  const refreshToken = randomBytes(12).toString('hex');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  let caFile: string | undefined;
  let certDir: string | undefined;
  if (tls) {
    const { cert, key } = makeCertificate(dir, 'registry');
    caFile = cert;
    certDir = join(dir, 'certs.d');
    mkdirSync(certDir);
    writeFileSync(join(certDir, 'ca.crt'), readFileSync(cert));
    lines.push('  tls:', `    certificate: ${cert}`, `    key: ${key}`);
  }
  let token: TokenServer | undefined;
  if (auth === 'basic') {
    const htpasswd = join(dir, 'htpasswd');
    // distribution only accepts bcrypt entries in htpasswd files.
    writeFileSync(htpasswd, `${username}:${bcrypt.hashSync(password, 4)}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: pare-test', `    path: ${htpasswd}`);
  } else if (auth === 'token') {
    const { cert, key } = makeCertificate(dir, 'token-signer');
    token = await startTokenServer({
      keyFile: key,
      certFile: cert,
      service: 'pare-test-registry',
      issuer: 'pare-test-issuer',
      users: { [username]: password },
      refreshTokens: { [refreshToken]: username },
    });
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${token.url}`,
      '    service: pare-test-registry',
      '    issuer: pare-test-issuer',
      `    rootcertbundle: ${cert}`,
    );
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  // Logs go to a file, not a pipe: a caller that blocks its event loop (spawnSync of a peer) must not be able to
  // stall the registry on a full pipe.
  const logFile = join(dir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(bin, ['serve', config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-20_000);
    } catch {
      return '';
    }
  };
  try {
    await waitReady('127.0.0.1', port, tls, caFile ? readFileSync(caFile, 'utf8') : undefined, proc, readLog);
  } catch (e) {
    proc.kill('SIGKILL');
    token?.server.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    host,
    url: `${tls ? 'https' : 'http'}://${host}`,
    auth,
    tls,
    caFile,
    certDir,
    username,
    password,
    storage,
    tokenRequests: token?.requests ?? [],
    refreshToken,
    logs: readLog,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      if (token) await new Promise((r) => token.server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
