import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../errors.ts';
import { defaultCredentials, eraseCredential, type HelperRunner, storeCredential } from './credentials.ts';

function home() {
  const dir = mkdtempSync(join(tmpdir(), 'pare-creds-'));
  mkdirSync(join(dir, '.docker'));
  return dir;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A fake docker-credential helper keeping secrets in a map, recording its calls. */
function fakeHelper(store: Record<string, { Username: string; Secret: string }>) {
  const calls: string[] = [];
  const run: HelperRunner = async (helper, action, input) => {
    calls.push(`${helper} ${action} ${input}`);
    if (action === 'get') {
      const hit = store[input];
      if (!hit) throw new RegistryError('REGISTRY_CREDENTIALS', 'credentials not found in native keychain');
      return JSON.stringify({ ServerURL: input, ...hit });
    }
    if (action === 'store') {
      const j = JSON.parse(input) as { ServerURL: string; Username: string; Secret: string };
      store[j.ServerURL] = { Username: j.Username, Secret: j.Secret };
    }
    return '';
  };
  return { run, calls };
}

describe('defaultCredentials', () => {
  describe('when docker config.json has auths', () => {
    it('decodes auth, matches URL-style keys and per-repository keys (longest wins)', async () => {
      const h = home();
      writeFileSync(
        join(h, '.docker', 'config.json'),
        JSON.stringify({
          auths: {
            'https://reg.test/v1/': { auth: b64('alice:pw:with:colons') },
            'reg.test/team': { auth: b64('team:tpw') },
            'tok.test': { identitytoken: 'refresh-me' },
          },
        }),
      );
      const creds = defaultCredentials({ env: {}, homeDir: h });
      expect(await creds('reg.test', 'app')).toEqual({ username: 'alice', password: 'pw:with:colons' });
      expect(await creds('reg.test', 'team/app')).toEqual({ username: 'team', password: 'tpw' });
      expect(await creds('tok.test')).toEqual({ identityToken: 'refresh-me' });
      expect(await creds('other.test')).toBeUndefined();
    });

    it('reads $DOCKER_CONFIG instead of ~/.docker', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-dc-'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { 'r.test': { auth: b64('u:p') } } }));
      const creds = defaultCredentials({ env: { DOCKER_CONFIG: dir }, homeDir: home() });
      expect(await creds('r.test')).toEqual({ username: 'u', password: 'p' });
    });
  });

  describe('when helpers are configured', () => {
    it('asks credHelpers[host] first, then credsStore, and maps "<token>" to an identity token', async () => {
      const h = home();
      writeFileSync(
        join(h, '.docker', 'config.json'),
        JSON.stringify({
          credHelpers: { 'a.test': 'ahelper' },
          credsStore: 'store',
          auths: { 'c.test': { auth: b64('c:c') } },
        }),
      );
      const { run, calls } = fakeHelper({
        'a.test': { Username: 'ua', Secret: 'sa' },
        'b.test': { Username: '<token>', Secret: 'idt' },
      });
      const creds = defaultCredentials({ env: {}, homeDir: h, runHelper: run });
      expect(await creds('a.test')).toEqual({ username: 'ua', password: 'sa' });
      expect(await creds('b.test')).toEqual({ identityToken: 'idt' });
      // credsStore has nothing for c.test: fall back to the file entry, as docker does
      expect(await creds('c.test')).toEqual({ username: 'c', password: 'c' });
      expect(calls).toEqual(['ahelper get a.test', 'store get b.test', 'store get c.test']);
    });
  });

  describe('when only podman has the login', () => {
    it('reads $XDG_RUNTIME_DIR/containers/auth.json', async () => {
      const run = mkdtempSync(join(tmpdir(), 'pare-xdg-'));
      mkdirSync(join(run, 'containers'));
      writeFileSync(
        join(run, 'containers', 'auth.json'),
        JSON.stringify({ auths: { 'p.test': { auth: b64('pu:pp') } } }),
      );
      const creds = defaultCredentials({ env: { XDG_RUNTIME_DIR: run }, homeDir: home() });
      expect(await creds('p.test')).toEqual({ username: 'pu', password: 'pp' });
    });
  });

  describe('when a file is corrupt', () => {
    it('throws REGISTRY_CREDENTIALS naming the file', async () => {
      const h = home();
      const path = join(h, '.docker', 'config.json');
      writeFileSync(path, '{ nope');
      await expect(defaultCredentials({ env: {}, homeDir: h })('x.test')).rejects.toThrow(
        expect.objectContaining({ code: 'REGISTRY_CREDENTIALS', message: expect.stringContaining(path) }),
      );
    });
  });
});

describe('storeCredential', () => {
  it('writes auths[host] atomically with mode 0600, keeping the other fields and replacing URL-style keys', async () => {
    const h = home();
    const path = join(h, '.docker', 'config.json');
    writeFileSync(
      path,
      JSON.stringify({
        auths: { 'https://r.test/v1/': { auth: b64('old:old') }, 'o.test': { auth: 'x' } },
        psFormat: 'table',
      }),
    );
    expect(
      await storeCredential('r.test', { username: 'new', password: 'pw' }, { env: {}, homeDir: h }),
    ).toEqual({ kind: 'file', path });
    const j = JSON.parse(readFileSync(path, 'utf8'));
    expect(j).toEqual({
      auths: { 'o.test': { auth: 'x' }, 'r.test': { auth: b64('new:pw') } },
      psFormat: 'table',
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await defaultCredentials({ env: {}, homeDir: h })('r.test')).toEqual({
      username: 'new',
      password: 'pw',
    });
    expect(await eraseCredential('r.test', { env: {}, homeDir: h })).toBe(true);
    expect(await defaultCredentials({ env: {}, homeDir: h })('r.test')).toBeUndefined();
  });

  it('creates the config when there is none', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pare-new-')), 'nested');
    await storeCredential('r.test', { username: 'u', password: 'p' }, { env: { DOCKER_CONFIG: dir } });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({
      auths: { 'r.test': { auth: b64('u:p') } },
    });
  });

  it('hands the secret to the configured helper and writes nothing', async () => {
    const h = home();
    const path = join(h, '.docker', 'config.json');
    writeFileSync(path, JSON.stringify({ credsStore: 'pass' }));
    const store: Record<string, { Username: string; Secret: string }> = {};
    const { run } = fakeHelper(store);
    expect(
      await storeCredential(
        'r.test',
        { username: 'u', password: 'p' },
        { env: {}, homeDir: h, runHelper: run },
      ),
    ).toEqual({
      kind: 'helper',
      helper: 'pass',
    });
    expect(store['r.test']).toEqual({ Username: 'u', Secret: 'p' });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ credsStore: 'pass' });
  });
});

describe('runCredentialHelper', () => {
  it('speaks the docker-credential-helpers protocol with a real program on PATH', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'pare-helper-'));
    const script = join(bin, 'docker-credential-pare-test');
    // note: "get" echoes the server it was asked about, so the test sees stdin reached the helper
    writeFileSync(
      script,
      '#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = r.test ]; then printf \'{"ServerURL":"%s","Username":"hu","Secret":"hs"}\' "$server"; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n',
      { mode: 0o755 },
    );
    const h = home();
    writeFileSync(join(h, '.docker', 'config.json'), JSON.stringify({ credsStore: 'pare-test' }));
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    try {
      const creds = defaultCredentials({ env: {}, homeDir: h });
      expect(await creds('r.test')).toEqual({ username: 'hu', password: 'hs' });
      expect(await creds('other.test')).toBeUndefined();
    } finally {
      process.env.PATH = saved;
    }
  });
});
