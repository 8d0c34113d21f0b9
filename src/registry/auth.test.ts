import { describe, expect, it } from 'vitest';
import { mergeScopes, parseChallenge } from './auth.ts';

describe('parseChallenge', () => {
  it.each([
    [
      'Bearer realm="https://auth.test/token",service="registry.test",scope="repository:a/b:pull,push"',
      {
        scheme: 'bearer',
        realm: 'https://auth.test/token',
        service: 'registry.test',
        scope: 'repository:a/b:pull,push',
      },
    ],
    [
      'bearer realm="http://127.0.0.1:1/t", error="insufficient_scope"',
      { scheme: 'bearer', realm: 'http://127.0.0.1:1/t', error: 'insufficient_scope' },
    ],
    ['Basic realm="basic-realm"', { scheme: 'basic', realm: 'basic-realm' }],
    ['Basic', { scheme: 'basic' }],
    ['Bearer realm="a\\"b"', { scheme: 'bearer', realm: 'a"b' }],
    ['Bearer realm=unquoted,service=s', { scheme: 'bearer', realm: 'unquoted', service: 's' }],
  ])('parses %s', (header, want) => {
    expect(parseChallenge(header)).toEqual(want);
  });

  it.each([[null], [''], ['Negotiate abc'], ['Bearer service="s"']])('returns undefined for %s', (h) => {
    expect(parseChallenge(h)).toBeUndefined();
  });
});

describe('mergeScopes', () => {
  it('merges actions per resource and sorts, so equal needs share a token', () => {
    expect(
      mergeScopes([
        'repository:b:push',
        'repository:a:pull',
        'repository:b:pull',
        'repository:a:pull registry:catalog:*',
      ]),
    ).toEqual(['registry:catalog:*', 'repository:a:pull', 'repository:b:pull,push']);
  });
});
