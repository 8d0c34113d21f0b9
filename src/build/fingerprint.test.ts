import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { codeFingerprint, sourceFingerprint } from './fingerprint.ts';

describe('the code fingerprint of the build caches', () => {
  const dir = tempDir('pare-fingerprint-');

  it('changes with any shipped module, its data or an imported library, and not with tests', async () => {
    const root = join(dir, 'src');
    mkdirSync(join(root, 'slice'), { recursive: true });
    const write = (name: string, text: string) => writeFileSync(join(root, name), text);
    write('slice/walk.ts', "import { parse } from 'yaml';\nexport const keep = 1;\n");
    write('slice/rules.json', '{"drop": []}\n');
    const lib = join(dir, 'node_modules', 'yaml');
    mkdirSync(lib, { recursive: true });
    writeFileSync(join(lib, 'package.json'), '{"name": "yaml", "version": "2.9.1"}\n');
    write('slice/walk.test.ts', 'test one\n');
    const url = pathToFileURL(`${root}/`);
    const first = await sourceFingerprint(url, '.ts');
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await sourceFingerprint(url, '.ts')).toBe(first);
    write('slice/walk.test.ts', 'test two\n');
    expect(await sourceFingerprint(url, '.ts')).toBe(first);
    write('slice/walk.ts', "import { parse } from 'yaml';\nexport const keep = 2;\n");
    const second = await sourceFingerprint(url, '.ts');
    expect(second).not.toBe(first);
    write('slice/rules.json', '{"drop": ["/usr/share/locale"]}\n');
    const third = await sourceFingerprint(url, '.ts');
    expect(third).not.toBe(second);
    writeFileSync(join(lib, 'package.json'), '{"name": "yaml", "version": "2.9.2"}\n');
    expect(await sourceFingerprint(url, '.ts')).not.toBe(third);
  });

  it('refuses a library it cannot find (no fingerprint, so nothing is cached)', async () => {
    const root = join(dir, 'missing');
    mkdirSync(root);
    writeFileSync(join(root, 'a.ts'), "import x from 'no-such-library-of-pare';\n");
    await expect(sourceFingerprint(pathToFileURL(`${root}/`), '.ts')).rejects.toThrow();
  });

  it('is known for the sources themselves', async () => {
    expect(await codeFingerprint()).toMatch(/^[0-9a-f]{64}$/);
  });
});
