import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLock } from '../../src/debian/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { appArchive, type FakeArchive } from '../helpers/fake-debian-archive.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare build --cache REPO` (issue 20 §3): two "machines" (two empty XDG_CACHE_HOMEs) share .debs through a loopback
 * distribution registry. Machine A builds from the mirror and fills the cache; machine B, with the mirror answering
 * nothing but 503, builds the same lock from the registry alone to the same digest. A .deb swapped in the registry's
 * storage is refused (its sha256 is not the lock's): B fails naming it, or with the mirror back, takes the mirror's.
 */

const peers = peersOrSkip('registry');

describe.skipIf(peers.skip)('pare build --cache (a registry shared by CI runners)', () => {
  const dir = tempDir('pare-registry-cache-');
  let archive: FakeArchive;
  let registry: RegistryServer;
  let project: string;
  let repo: string;
  let digestA: string;

  const machine = (name: string) => ({ XDG_CACHE_HOME: join(dir, `machine-${name}`) });
  const mirrorDown = () => archive.fault(() => ({ status: 503 }));
  const poolRequests = () => archive.requests.filter((r) => r.startsWith('pool/')).length;

  beforeAll(async () => {
    archive = await appArchive();
    registry = await startRegistry({ auth: 'none' });
    repo = `${registry.host}/ci/pare-cache`;
    project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(
      join(project, 'pare.yaml'),
      `name: cached\nplatforms: [linux/amd64]\ndebian:\n  suite: bookworm\n  updates: false\n  security: false\n  mirror: ${archive.url}\n  keyring: ${archive.keyringAsc}\npackages: [base-files, app]\nimage:\n  entrypoint: [/usr/bin/app]\nslice: none\n`,
    );
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await archive?.close();
  });

  it('machine A builds from the mirror and fills the cache with the lock’s .debs', async () => {
    const a = await pare(['build', project, '-o', join(dir, 'out-a'), '--cache', repo], {
      env: machine('a'),
    });
    expect(a.code, a.stderr).toBe(0);
    digestA = a.stdout.split('\n')[0]!;
    expect(digestA).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(a.stderr).toMatch(
      /cache: 2 of 2 \.debs uploaded to registry cache .*\/ci\/pare-cache \(pare-debs-[0-9a-f]{64}\)/,
    );
    // Again: nothing to upload, the same manifest.
    const again = await pare(['build', project, '-o', join(dir, 'out-a2'), '--cache', repo], {
      env: machine('a'),
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('cache: 0 of 2 .debs uploaded');
  });

  it('machine B builds the same lock from the registry alone (mirror down) to the same digest', async () => {
    mirrorDown();
    const before = poolRequests();
    // PARE_CACHE names the repository as --cache does.
    const b = await pare(['build', project, '-o', join(dir, 'out-b'), '--locked'], {
      env: { ...machine('b'), PARE_CACHE: repo },
    });
    archive.fault(undefined);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout.split('\n')[0]).toBe(digestA);
    expect(poolRequests()).toBe(before);
    expect(b.stderr).not.toContain('warning');
  });

  it('refuses a .deb swapped in the registry: fails naming it with the mirror down, takes the mirror’s when it is up', async () => {
    const lock = await readLock(join(project, 'pare.lock'));
    const app = lock!.packages.find((p) => p.name === 'app')!;
    const hex = app.sha256.slice('sha256:'.length);
    const data = join(registry.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const original = readFileSync(data);
    const evil = Buffer.from(original);
    evil[evil.length - 1]! ^= 0xff;
    writeFileSync(data, evil);
    try {
      mirrorDown();
      const c = await pare(['build', project, '-o', join(dir, 'out-c'), '--locked', '--cache', repo], {
        env: machine('c'),
      });
      archive.fault(undefined);
      expect(c.code, c.stderr).toBe(1);
      expect(c.stderr).toContain(`not used for ${app.sha256}`);
      expect(c.stderr).toMatch(/hash|sha256/);
      expect(c.stderr).toContain('app');
      const d = await pare(['build', project, '-o', join(dir, 'out-d'), '--locked', '--cache', repo], {
        env: machine('d'),
      });
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout.split('\n')[0]).toBe(digestA);
      expect(d.stderr).toContain(`not used for ${app.sha256}`);
      // What machine D keeps is the lock's .deb, never the registry's bytes.
      const kept = readFileSync(join(dir, 'machine-d', 'pare', 'blobs', 'sha256', hex));
      expect(kept.equals(original)).toBe(true);
    } finally {
      archive.fault(undefined);
      writeFileSync(data, original);
    }
  });

  it('takes the repository from pare.yaml cache: when neither --cache nor PARE_CACHE is given', async () => {
    const yaml = join(project, 'pare.yaml');
    const original = readFileSync(yaml, 'utf8');
    writeFileSync(yaml, `${original}cache: ${repo}\n`);
    try {
      mirrorDown();
      const e = await pare(['build', project, '-o', join(dir, 'out-e'), '--locked'], { env: machine('e') });
      archive.fault(undefined);
      expect(e.code, e.stderr).toBe(0);
      expect(e.stdout.split('\n')[0]).toBe(digestA);
      expect(e.stderr).toContain('cache: 0 of 2 .debs uploaded');
    } finally {
      archive.fault(undefined);
      writeFileSync(yaml, original);
    }
  });

  it('refuses a cache named by tag, digest or path (exit 2, naming where it was given)', async () => {
    for (const bad of [`${repo}:latest`, 'oci:/tmp/x']) {
      const r = await pare(['build', project, '-o', join(dir, 'out-bad'), '--cache', bad], {
        env: machine('a'),
      });
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('--cache: cannot use');
      expect(r.stderr).toContain('name a registry repository');
    }
    const yaml = join(project, 'pare.yaml');
    const original = readFileSync(yaml, 'utf8');
    writeFileSync(yaml, `${original}cache: ${repo}@sha256:${'0'.repeat(64)}\n`);
    try {
      const r = await pare(['build', project, '-o', join(dir, 'out-bad')], { env: machine('a') });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/pare\.yaml:\d+:\d+: cannot use/);
    } finally {
      writeFileSync(yaml, original);
    }
  });
});
