import { describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd, resolveUser } from './user.ts';

const db = {
  passwd: [
    '# comment',
    'root:x:0:0:root:/root:/bin/sh',
    'app:x:1000:1001:App:/home/app:/sbin/nologin',
    'broken:x:notanumber:1:::',
    'short:x:5',
    '',
  ].join('\n'),
  group: 'root:x:0:\napp:x:1001:\nstaff:x:50:app,other\n',
};

describe('parsePasswd', () => {
  it('skips comments and malformed lines, as getpwent does', () => {
    expect(parsePasswd(db.passwd).map((p) => p.name)).toEqual(['root', 'app']);
  });
});

describe('parseGroup', () => {
  it('reads members', () => {
    expect(parseGroup(db.group)[2]).toEqual({ name: 'staff', gid: 50, members: ['app', 'other'] });
  });
});

describe('resolveUser', () => {
  it.each([
    [undefined, { uid: 65532, gid: 65532, home: '/', source: 'default' }],
    ['', { uid: 65532, gid: 65532, home: '/', source: 'default' }],
    ['app', { uid: 1000, gid: 1001, home: '/home/app', source: 'option' }],
    ['1000', { uid: 1000, gid: 1001, home: '/home/app', source: 'option' }],
    ['app:staff', { uid: 1000, gid: 50, home: '/home/app', source: 'option' }],
    ['app:7', { uid: 1000, gid: 7, home: '/home/app', source: 'option' }],
    ['root', { uid: 0, gid: 0, home: '/root', source: 'option' }],
    // note: unknown numeric uid gets gid = uid, not docker's gid 0
    ['4242', { uid: 4242, gid: 4242, home: '/', source: 'option' }],
    ['4242:4343', { uid: 4242, gid: 4343, home: '/', source: 'option' }],
  ] as const)('resolves %j', (spec, want) => {
    expect(resolveUser(spec, db)).toEqual(want);
  });

  describe('when a name is not in the image', () => {
    it('throws RUN_USER_NOT_FOUND for a user', () => {
      expect(() => resolveUser('nobody', db)).toThrow(
        expect.objectContaining({ code: 'RUN_USER_NOT_FOUND', message: expect.stringContaining('"nobody"') }),
      );
    });
    it('throws RUN_USER_NOT_FOUND for a group', () => {
      expect(() => resolveUser('app:wheel', db)).toThrow(
        expect.objectContaining({ code: 'RUN_USER_NOT_FOUND' }),
      );
    });
    it('resolves names against no database at all as not found', () => {
      expect(() => resolveUser('app', {})).toThrow(expect.objectContaining({ code: 'RUN_USER_NOT_FOUND' }));
    });
  });

  it.each(['a:b:c', ':1', '1:', '4294967295', '99999999999'])('rejects malformed %j', (spec) => {
    expect(() => resolveUser(spec, db)).toThrow(expect.objectContaining({ code: 'RUN_USER_INVALID' }));
  });
});
