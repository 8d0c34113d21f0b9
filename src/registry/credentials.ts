import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from '../errors.ts';
import { writeFileAtomic } from '../layout/atomic.ts';

/**
 * Registry credentials from the files docker and podman users already have:
 * - `$REGISTRY_AUTH_FILE` (containers-auth.json(5)), when set;
 * - docker's `config.json` in `$DOCKER_CONFIG` or `~/.docker`: `credHelpers[host]`, then `credsStore`, then
 *   `auths[host]` (`auth` = base64 `user:password`, or `identitytoken`);
 * - podman's `${XDG_RUNTIME_DIR}/containers/auth.json`, then `~/.config/containers/auth.json`.
 * Helpers are the `docker-credential-<name>` programs of docker-credential-helpers, spoken to over stdin/stdout
 * (https://github.com/docker/docker-credential-helpers#development).
 */

/** What to authenticate with: a user and password, or an OAuth2 refresh token (`identitytoken`). */
export interface Credential {
  readonly username?: string;
  readonly password?: string;
  /** A refresh token for the registry's OAuth2 token endpoint (docker's `identitytoken`). */
  readonly identityToken?: string;
}

/** Returns the credential for a registry host (and repository, for per-namespace entries), or undefined. */
export type CredentialProvider = (host: string, repository?: string) => Promise<Credential | undefined>;

/** Runs `docker-credential-<helper> <action>` with `input` on stdin and returns stdout. */
export type HelperRunner = (
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
) => Promise<string>;

export interface CredentialOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly homeDir?: string;
  readonly runHelper?: HelperRunner;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}
interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

/** Credential helpers must answer quickly; a hung keychain prompt should not hang a push forever. */
const HELPER_TIMEOUT_MS = 30_000;

/** Returns the path of docker's config.json: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
export function dockerConfigPath(options: CredentialOptions = {}): string {
  const env = options.env ?? process.env;
  const dir = env.DOCKER_CONFIG || join(options.homeDir ?? homedir(), '.docker');
  return join(dir, 'config.json');
}

/** Returns the auth files consulted, in order of precedence. */
export function authFilePaths(options: CredentialOptions = {}): string[] {
  const env = options.env ?? process.env;
  const home = options.homeDir ?? homedir();
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  paths.push(dockerConfigPath(options));
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  paths.push(join(home, '.config', 'containers', 'auth.json'));
  return paths;
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RegistryError('REGISTRY_CREDENTIALS', `cannot read credentials file "${path}": ${String(e)}`, {
      cause: e,
    });
  }
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RegistryError(
      'REGISTRY_CREDENTIALS',
      `cannot parse credentials file "${path}": not JSON (${(e as Error).message}); fix or remove it`,
      { cause: e },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new RegistryError(
      'REGISTRY_CREDENTIALS',
      `cannot parse credentials file "${path}": not a JSON object`,
    );
  return parsed as AuthFile;
}

/** docker writes keys as `https://host/v1/` or `host`; podman also allows `host/namespace/repo`. */
function normalizeKey(key: string): string {
  const m = /^[a-z]+:\/\/(.*)$/i.exec(key);
  if (m) return (m[1] ?? '').split('/')[0]!.toLowerCase();
  return key.replace(/\/+$/, '').toLowerCase();
}

/** Returns the most specific key of `keys` for host/repository (podman's longest-prefix rule), or undefined. */
function matchKey(keys: Iterable<string>, host: string, repository?: string): string | undefined {
  const want = repository ? `${host}/${repository}` : host;
  let best: string | undefined;
  let bestLen = -1;
  for (const key of keys) {
    const n = normalizeKey(key);
    if (n === want || n === host || (want.startsWith(`${n}/`) && n.startsWith(`${host}/`))) {
      if (n.length > bestLen) {
        best = key;
        bestLen = n.length;
      }
    }
  }
  return best;
}

function decodeEntry(path: string, key: string, e: AuthEntry): Credential | undefined {
  if (e.identitytoken) return { identityToken: e.identitytoken };
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0)
      throw new RegistryError(
        'REGISTRY_CREDENTIALS',
        `cannot use credentials for "${key}" in "${path}": "auth" is not base64 of user:password; run pare login again`,
      );
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (e.username && e.password) return { username: e.username, password: e.password };
  return undefined;
}

/** Runs a docker-credential helper from PATH. */
export const runCredentialHelper: HelperRunner = (helper, action, input) =>
  new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'], timeout: HELPER_TIMEOUT_MS });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) =>
      reject(
        new RegistryError('REGISTRY_CREDENTIALS', `cannot run credential helper "${program}": ${e.message}`, {
          cause: e,
        }),
      ),
    );
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(stdout);
      else {
        const msg = (stdout + Buffer.concat(err).toString('utf8')).trim();
        reject(
          new RegistryError(
            'REGISTRY_CREDENTIALS',
            `cannot ${action} credentials with "${program}": exit ${code}${msg ? `: ${msg}` : ''}`,
          ),
        );
      }
    });
    child.stdin.end(input);
  });

async function fromHelper(run: HelperRunner, helper: string, host: string): Promise<Credential | undefined> {
  let out: string;
  try {
    out = await run(helper, 'get', host);
  } catch (e) {
    // The helper protocol reports a missing entry as a failure with this exact text.
    if (e instanceof Error && /credentials not found/i.test(e.message)) return undefined;
    throw e;
  }
  let j: { Username?: unknown; Secret?: unknown };
  try {
    j = JSON.parse(out) as typeof j;
  } catch (e) {
    throw new RegistryError(
      'REGISTRY_CREDENTIALS',
      `cannot parse the answer of "docker-credential-${helper} get" for "${host}": not JSON`,
      { cause: e },
    );
  }
  if (typeof j.Secret !== 'string' || j.Secret === '') return undefined;
  // docker-credential-helpers store identity tokens under the user name "<token>".
  if (j.Username === '<token>') return { identityToken: j.Secret };
  return { username: typeof j.Username === 'string' ? j.Username : '', password: j.Secret };
}

/**
 * Returns a provider that looks a host up in the auth files (see module comment), reading them on each call so a
 * `pare login` in between is seen. Throws REGISTRY_CREDENTIALS for a corrupt file or a failing helper.
 */
export function defaultCredentials(options: CredentialOptions = {}): CredentialProvider {
  const run = options.runHelper ?? runCredentialHelper;
  return async (host, repository) => {
    for (const path of authFilePaths(options)) {
      const file = await readAuthFile(path);
      if (!file) continue;
      const helperKey = matchKey(Object.keys(file.credHelpers ?? {}), host, repository);
      if (helperKey !== undefined) return fromHelper(run, file.credHelpers![helperKey]!, host);
      const authKey = matchKey(Object.keys(file.auths ?? {}), host, repository);
      if (file.credsStore) {
        const c = await fromHelper(run, file.credsStore, host);
        if (c) return c;
      }
      if (authKey !== undefined) {
        const c = decodeEntry(path, authKey, file.auths![authKey]!);
        if (c) return c;
      }
    }
    return undefined;
  };
}

/** Returns a provider that always answers `cred` for `host` (and nothing for other hosts). */
export function staticCredentials(host: string, cred: Credential): CredentialProvider {
  return async (h) => (h === host ? cred : undefined);
}

/** Where `storeCredential` put the secret. */
export type StoredIn =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'helper'; readonly helper: string };

/**
 * Saves a credential for `host` the way `docker login` does: to the configured helper (`credHelpers[host]` or
 * `credsStore`) when there is one, else as `auths[host].auth` in docker's config.json, written atomically with mode
 * 0600 and every other field kept. Throws REGISTRY_CREDENTIALS.
 */
export async function storeCredential(
  host: string,
  cred: Credential,
  options: CredentialOptions = {},
): Promise<StoredIn> {
  const path = dockerConfigPath(options);
  const file = (await readAuthFile(path)) ?? {};
  const helper = file.credHelpers?.[host] ?? file.credsStore;
  if (helper) {
    const run = options.runHelper ?? runCredentialHelper;
    const Username = cred.identityToken ? '<token>' : (cred.username ?? '');
    const Secret = cred.identityToken ?? cred.password ?? '';
    await run(helper, 'store', JSON.stringify({ ServerURL: host, Username, Secret }));
    return { kind: 'helper', helper };
  }
  const auths = { ...(file.auths ?? {}) };
  for (const k of Object.keys(auths)) if (normalizeKey(k) === host) delete auths[k];
  auths[host] = cred.identityToken
    ? { identitytoken: cred.identityToken }
    : { auth: Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`, 'utf8').toString('base64') };
  try {
    await writeFileAtomic(path, `${JSON.stringify({ ...file, auths }, null, '\t')}\n`, 0o600, 0o700);
  } catch (e) {
    throw new RegistryError('REGISTRY_CREDENTIALS', `cannot write credentials file "${path}": ${String(e)}`, {
      cause: e,
    });
  }
  return { kind: 'file', path };
}

/** Removes the credential for `host` from docker's config.json (or its helper). Returns false when there was none. */
export async function eraseCredential(host: string, options: CredentialOptions = {}): Promise<boolean> {
  const path = dockerConfigPath(options);
  const file = await readAuthFile(path);
  if (!file) return false;
  const helper = file.credHelpers?.[host] ?? file.credsStore;
  if (helper) {
    await (options.runHelper ?? runCredentialHelper)(helper, 'erase', host);
    return true;
  }
  const auths = { ...(file.auths ?? {}) };
  const keys = Object.keys(auths).filter((k) => normalizeKey(k) === host);
  if (keys.length === 0) return false;
  for (const k of keys) delete auths[k];
  await writeFileAtomic(path, `${JSON.stringify({ ...file, auths }, null, '\t')}\n`, 0o600, 0o700);
  return true;
}
