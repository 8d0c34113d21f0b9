import { describe, expect, it } from 'vitest';
import {
  formatReference,
  formatTransportReference,
  manifestReference,
  parseReference,
  parseTransportReference,
} from './reference.ts';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseReference', () => {
  describe('when the reference names a host', () => {
    it.each([
      ['127.0.0.1:5000/app', { registry: '127.0.0.1:5000', repository: 'app' }],
      ['localhost/app:1.0', { registry: 'localhost', repository: 'app', tag: '1.0' }],
      ['Reg.Example.test/a/b/c:v_1', { registry: 'reg.example.test', repository: 'a/b/c', tag: 'v_1' }],
      [`host.test/app@${D}`, { registry: 'host.test', repository: 'app', digest: D }],
      [`host.test:443/app:tag@${D}`, { registry: 'host.test:443', repository: 'app', tag: 'tag', digest: D }],
      ['[::1]:5000/app', { registry: '[::1]:5000', repository: 'app' }],
      ['host.test/a__b/c--d.e', { registry: 'host.test', repository: 'a__b/c--d.e' }],
    ])('parses %s', (input, want) => {
      expect(parseReference(input, { env: {} })).toEqual(want);
    });
  });

  describe('when there is no host', () => {
    it('throws REGISTRY_REFERENCE saying how to fix it', () => {
      expect(() => parseReference('app:1', { env: {} })).toThrow(
        expect.objectContaining({
          code: 'REGISTRY_REFERENCE',
          message: expect.stringContaining('PARE_DEFAULT_REGISTRY'),
        }),
      );
    });
    it('uses PARE_DEFAULT_REGISTRY when set', () => {
      expect(parseReference('team/app:1', { env: { PARE_DEFAULT_REGISTRY: '127.0.0.1:5000' } })).toEqual({
        registry: '127.0.0.1:5000',
        repository: 'team/app',
        tag: '1',
      });
    });
  });

  describe('when the reference is malformed', () => {
    it.each([
      ['host.test/App', 'repository component'],
      ['host.test/app:-bad', 'tag'],
      ['host.test/app@sha256:abc', 'digest'],
      ['host.test:99999/app', 'host[:port]'],
      ['host.test/', 'empty'],
      ['host.test/a//b', 'repository component'],
      [`host.test/${'a'.repeat(260)}`, 'longer than 255'],
    ])('rejects %s', (input, why) => {
      expect(() => parseReference(input, { env: {} })).toThrow(
        expect.objectContaining({ code: 'REGISTRY_REFERENCE', message: expect.stringContaining(why) }),
      );
    });
  });

  it('round-trips through formatReference', () => {
    const s = `127.0.0.1:5000/a/b:1@${D}`;
    expect(formatReference(parseReference(s))).toBe(s);
  });

  it('asks for latest when neither tag nor digest is given, and the digest when pinned', () => {
    expect(manifestReference(parseReference('h.test/app'))).toBe('latest');
    expect(manifestReference(parseReference(`h.test/app:1@${D}`))).toBe(D);
  });
});

describe('parseTransportReference', () => {
  it.each([
    [
      'docker://h.test/app:1',
      { transport: 'docker', ref: { registry: 'h.test', repository: 'app', tag: '1' } },
    ],
    ['h.test/app:1', { transport: 'docker', ref: { registry: 'h.test', repository: 'app', tag: '1' } }],
    ['oci:/tmp/x', { transport: 'oci', path: '/tmp/x' }],
    ['oci:/tmp/x:v1', { transport: 'oci', path: '/tmp/x', tag: 'v1' }],
    [`oci:/tmp/x:${D}`, { transport: 'oci', path: '/tmp/x', tag: D }],
    ['oci:./a:b/c', { transport: 'oci', path: './a:b/c' }],
    ['oci-archive:img.tar:latest', { transport: 'oci-archive', path: 'img.tar', tag: 'latest' }],
    ['docker-archive:img.tar', { transport: 'docker-archive', path: 'img.tar' }],
  ])('parses %s', (input, want) => {
    expect(parseTransportReference(input, { env: {} })).toEqual(want);
    expect(
      parseTransportReference(formatTransportReference(parseTransportReference(input, { env: {} }))),
    ).toEqual(want);
  });

  it.each([
    ['oci:', 'INPUT_INVALID', 'no path after "oci:"'],
    ['ftp://h/app', 'REGISTRY_REFERENCE', 'unknown transport "ftp"'],
    ['oci:/x:', 'INPUT_INVALID', 'empty tag'],
  ])('rejects %s', (input, code, why) => {
    expect(() => parseTransportReference(input, { env: {} })).toThrow(
      expect.objectContaining({ code, message: expect.stringContaining(why) }),
    );
  });
});
