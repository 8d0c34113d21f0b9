import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAptSources } from '../../src/debian/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { isRoot, peersOrSkip, peersRequired, runPeer } from '../helpers/peers.ts';
import { compileProbe } from '../helpers/probe.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `accounts:` end to end: owners checked by umoci's unpack (as root; rootless unpacking maps every owner to the caller),
 * the image's user checked from inside `pare run` — by the static probe in a files-only image, and by Debian's own
 * `id` (getpwuid through the image's /etc/passwd) in a packages image built from the host's apt sources.
 */
const peers = peersOrSkip('bwrap', 'gcc', 'umoci');
const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb'));
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources: the coreutils build needs one';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}

const ACCOUNTS = `accounts:
  groups:
    - { name: app, gid: 1234 }
    - { name: ops, gid: 1300, members: [app] }
  users:
    - { name: app, uid: 1234, gid: 1234, home: /home/app }
`;

describe.skipIf(peers.skip)('accounts: in a built image', () => {
  const dir = tempDir();

  it('owns files by account name (umoci unpack) and runs as the account (pare run)', async () => {
    const p = join(dir, 'files');
    mkdirSync(p);
    compileProbe(peers.paths.gcc!, join(p, 'probe'));
    writeFileSync(
      join(p, 'pare.yaml'),
      `name: accounts\n${ACCOUNTS}files:
  - { src: probe, dest: /usr/local/bin/probe }
  - { dest: /srv/data, dir: true, owner: app }
  - { dest: /srv/conf, content: "x", owner: "app:ops", mode: "0640" }
image:
  user: app
  entrypoint: [/usr/local/bin/probe]
  cmd: [id]
`,
    );
    const out = join(dir, 'files-out');
    const b = await pare(['build', p, '-o', out]);
    expect(b.code, b.stderr).toBe(0);

    const bundle = join(dir, 'bundle');
    runPeer(peers.paths.umoci!, [
      'unpack',
      ...(isRoot() ? [] : ['--rootless']),
      '--image',
      `${out}:latest`,
      bundle,
    ]);
    const rootfs = join(bundle, 'rootfs');
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toContain(
      'app:x:1234:1234:app:/home/app:/sbin/nologin\n',
    );
    expect(readFileSync(join(rootfs, 'etc/group'), 'utf8')).toContain('app:x:1234:\nops:x:1300:app\n');
    if (isRoot()) {
      const own = (q: string) => {
        const s = statSync(join(rootfs, q));
        return `${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)}`;
      };
      expect(['srv/data', 'srv/conf', 'home/app'].map(own)).toEqual([
        '1234:1234 755',
        '1234:1300 640',
        '1234:1234 700',
      ]);
    } else
      console.warn(
        '[skip] owners after umoci unpack: not root (rootless unpacking maps owners to the caller)',
      );

    const r = await pare(['run', `oci:${out}:latest`]);
    expect(r.stdout).toBe('id: uid=1234 gid=1234\n');
    expect(r.code).toBe(0);
  });

  it.skipIf(!mirror)('runs Debian coreutils id as the account, by number and by name', async () => {
    const p = join(dir, 'debian');
    mkdirSync(p);
    writeFileSync(
      join(p, 'pare.yaml'),
      `name: accounts-id\ndebian:\n  suite: bookworm\npackages: [coreutils]\n${ACCOUNTS}image:\n  user: app\n  entrypoint: [/usr/bin/id]\n`,
    );
    const out = join(dir, 'debian-out');
    const b = await pare(['build', p, '-o', out]);
    expect(b.code, b.stderr).toBe(0);
    const id = async (...args: string[]) => {
      const r = await pare(['run', `oci:${out}:latest`, '--', ...args]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(await id('-u')).toBe('1234\n');
    expect(await id('-un')).toBe('app\n');
    expect(await id('-gn')).toBe('app\n');
  });
});
