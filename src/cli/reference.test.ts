import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { parseImageArgument, registryArg } from './reference.ts';

describe('parseImageArgument', () => {
  let dir: string;
  const cwd = process.cwd();
  beforeAll(() => {
    dir = tempDir('pare-ref-arg-');
    mkdirSync(join(dir, 'layout'));
    writeFileSync(join(dir, 'layout', 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, 'image.tar'), '');
    // A relative directory spelled like a registry reference: an existing path wins.
    mkdirSync(join(dir, 'localhost', 'app'), { recursive: true });
    process.chdir(dir);
  });
  afterAll(() => process.chdir(cwd));

  describe('when the argument names a transport', () => {
    it.each([
      ['oci:/x/layout:v1', { transport: 'oci', path: '/x/layout', tag: 'v1' }],
      ['oci-archive:/x/a.tar', { transport: 'oci-archive', path: '/x/a.tar' }],
      ['docker-archive:a.tar:app:1', { transport: 'docker-archive', path: 'a.tar:app', tag: '1' }],
      [
        'docker://127.0.0.1:5000/app:1',
        { transport: 'docker', ref: { registry: '127.0.0.1:5000', repository: 'app', tag: '1' } },
      ],
    ])('parses %s without looking at the disk', async (input, want) => {
      expect(await parseImageArgument(input)).toEqual(want);
    });
  });

  describe('when the argument is bare', () => {
    it.each([
      ['layout', { transport: 'oci', path: 'layout' }],
      ['layout:v1', { transport: 'oci', path: 'layout', tag: 'v1' }],
      ['image.tar', { transport: 'oci-archive', path: 'image.tar' }],
      ['image.tar:v1', { transport: 'oci-archive', path: 'image.tar', tag: 'v1' }],
      ['localhost/app', { transport: 'oci', path: 'localhost/app' }],
      [
        'localhost/other:1',
        { transport: 'docker', ref: { registry: 'localhost', repository: 'other', tag: '1' } },
      ],
      [
        'registry.example:5000/team/app@sha256:' + 'a'.repeat(64),
        {
          transport: 'docker',
          ref: {
            registry: 'registry.example:5000',
            repository: 'team/app',
            digest: `sha256:${'a'.repeat(64)}`,
          },
        },
      ],
    ])('reads %s as the disk says', async (input, want) => {
      expect(await parseImageArgument(input)).toEqual(want);
    });
  });

  describe('when the argument is neither', () => {
    it.each([
      [
        './missing',
        'INPUT_NOT_FOUND',
        'cannot open image "./missing": no such file or directory (write oci:DIR',
      ],
      ['/nowhere/x', 'INPUT_NOT_FOUND', 'no such file or directory'],
      ['hello:latest', 'INPUT_NOT_FOUND', 'and not a registry reference (no registry host;'],
      ['ftp://h/app', 'INPUT_INVALID', 'unknown transport "ftp"'],
      ['oci:', 'INPUT_INVALID', 'no path after "oci:"'],
      ['docker://h.example/App', 'INPUT_INVALID', 'repository component "App"'],
    ])('refuses %s (%s)', async (input, code, why) => {
      await expect(parseImageArgument(input)).rejects.toThrow(
        expect.objectContaining({ code, message: expect.stringContaining(why) }),
      );
    });
  });
});

describe('registryArg', () => {
  it('takes HOST/REPO with or without docker:// and refuses local transports', async () => {
    expect(await registryArg('docker://h.example/app:1')).toEqual({
      registry: 'h.example',
      repository: 'app',
      tag: '1',
    });
    expect(await registryArg('h.example/app')).toEqual({ registry: 'h.example', repository: 'app' });
    await expect(registryArg('oci:/x', 'a registry repository to push to')).rejects.toThrow(
      expect.objectContaining({
        code: 'USAGE',
        message: expect.stringContaining('want a registry repository to push to'),
      }),
    );
  });
});
