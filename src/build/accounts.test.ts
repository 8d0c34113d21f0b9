import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { loadConfig } from '../config/index.ts';
import { bufferContent, dirEntry, fileEntry, TreeBuilder } from '../fstree/index.ts';
import { build } from './build.ts';

/** `accounts:` through the build: written into the base's account files, found by name, never shadowing one. */

const ACCOUNTS =
  'accounts:\n  groups: [{ name: app, gid: 1234 }, { name: ops, gid: 1300, members: [app] }]\n  users: [{ name: app, uid: 1234, gid: 1234 }]\n';

describe('build with accounts:', () => {
  const dir = tempDir();
  let n = 0;
  const project = async (yaml: string) => {
    const p = join(dir, `p${n++}`);
    mkdirSync(p);
    writeFileSync(join(p, 'pare.yaml'), yaml);
    return loadConfig(p);
  };
  const text = async (t: Awaited<ReturnType<typeof build>>, path: string) =>
    new TextDecoder().decode(await (await t.tree('linux/amd64'))!.readFile(path));

  it('appends the users and groups to the minimal base, makes the home, and resolves the names', async () => {
    const loaded = await project(
      `${ACCOUNTS}files:\n  - { dest: /app/data, dir: true, owner: "app:ops" }\nimage:\n  user: app\n`,
    );
    const r = await build(loaded, { dryRun: true, layerCache: false });
    expect(await text(r, '/etc/passwd')).toBe(
      'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\napp:x:1234:1234:app:/home/app:/sbin/nologin\n',
    );
    expect(await text(r, '/etc/group')).toBe(
      'root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\napp:x:1234:\nops:x:1300:app\n',
    );
    const tree = (await r.tree('linux/amd64'))!;
    expect(tree.get('/home/app')).toMatchObject({ kind: 'dir', mode: 0o700, uid: 1234, gid: 1234 });
    expect(tree.get('/app/data')).toMatchObject({ uid: 1234, gid: 1300 });
    const img = r.artifact.kind === 'image' ? r.artifact.image : undefined;
    expect((await img!.config()).config?.User).toBe('1234:1234');
  });

  it('gives accounts to a scratch base, and the same digest twice', async () => {
    const yaml = `name: same\nbase: scratch\n${ACCOUNTS}image:\n  user: app\n`;
    const a = await build(await project(yaml), { dryRun: true, layerCache: false });
    const b = await build(await project(yaml), { dryRun: true, layerCache: false });
    expect(a.digest).toBe(b.digest);
    expect(await text(a, '/etc/passwd')).toBe('app:x:1234:1234:app:/home/app:/sbin/nologin\n');
  });

  describe('when an account clashes or does not add up', () => {
    // A packages tree whose /etc/passwd (shipped by a package) has a user of its own.
    const packages = async () =>
      new TreeBuilder()
        .put('/etc', dirEntry())
        .put(
          '/etc/passwd',
          fileEntry(
            bufferContent(
              'root:x:0:0:root:/root:/sbin/nologin\nmessagebus:x:100:101::/run/dbus:/usr/sbin/nologin\n',
            ),
          ),
        )
        .put('/etc/group', fileEntry(bufferContent('root:x:0:\nmessagebus:x:101:\n')))
        .put('/usr/bin/app', fileEntry(bufferContent('x'), { mode: 0o755 }))
        .build();
    it.each([
      [
        'users: [{ name: root, uid: 1000, gid: 0 }]',
        /:5:19: user "root" already exists \(built in, uid 0\); pick another name/,
      ],
      [
        'users: [{ name: app, uid: 65532, gid: 0 }]',
        /:5:29: uid 65532 is already user "nonroot"'s \(built in\); pick another uid/,
      ],
      [
        'groups: [{ name: nogroup, gid: 7 }]',
        /:5:20: group "nogroup" already exists \(built in, gid 65534\)/,
      ],
      ['groups: [{ name: g, gid: 65534 }]', /gid 65534 is already group "nogroup"'s \(built in\)/],
      [
        'users: [{ name: messagebus, uid: 1000, gid: 0 }]',
        /user "messagebus" already exists \(in the packages' \/etc\/passwd, uid 100\)/,
      ],
      [
        'users: [{ name: app, uid: 100, gid: 0 }]',
        /uid 100 is already user "messagebus"'s \(in the packages' \/etc\/passwd\)/,
      ],
      [
        'groups: [{ name: g, gid: 101 }]',
        /gid 101 is already group "messagebus"'s \(in the packages' \/etc\/group\)/,
      ],
      [
        'users: [{ name: a, uid: 1000, gid: 0 }, { name: b, uid: 1000, gid: 0 }]',
        /uid 1000 is already user "a"'s \(in accounts.users\)/,
      ],
      [
        'users: [{ name: app, uid: 1000, gid: 999 }]',
        /gid 999 is no group; add \{ name: …, gid: 999 \} to accounts.groups/,
      ],
      [
        'groups: [{ name: g, gid: 5, members: [ghost] }]',
        /member "ghost" is no user; add it to accounts.users/,
      ],
    ])('refuses %s', async (line, message) => {
      const loaded = await project(
        `packages: [app]\nimage:\n  entrypoint: [/usr/bin/app]\naccounts:\n  ${line}\n`,
      );
      await expect(
        build(loaded, { dryRun: true, layerCache: false, packagesRoot: packages }),
      ).rejects.toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) }),
      );
    });

    it('refuses a files: entry that writes /etc/passwd next to accounts:', async () => {
      const loaded = await project(`${ACCOUNTS}files:\n  - { dest: /etc/passwd, content: "x" }\n`);
      await expect(build(loaded, { dryRun: true, layerCache: false })).rejects.toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          message: expect.stringMatching(/:5:13: accounts: writes \/etc\/passwd; remove this files: entry/),
        }),
      );
    });
  });
});
