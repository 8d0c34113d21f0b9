/** The streamed `pare audit --json` writer must print exactly `JSON.stringify(report, null, 2)` and a newline. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditRoot } from '../../src/audit/index.ts';
import { reportJson } from '../../src/cli/commands/audit.ts';
import { craftElf, hostRootFs } from '../../src/elf/index.ts';

describe('reportJson', () => {
  it.each([
    ['no files', []],
    ['one file', ['a']],
    ['several files with imports and missing libraries', ['a', 'b', 'c']],
  ])('when the report has %s, yields the bytes of JSON.stringify', async (_what, names) => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-json-'));
    for (const n of names)
      writeFileSync(
        join(dir, n),
        craftElf({
          machine: 62,
          interp: '/lib64/ld-linux-x86-64.so.2',
          needed: ['libc.so.6', `libpare-${n}.so.1`],
          debug: true,
          // note: a name with quotes and a backslash must be escaped identically.
          imports: ['puts', `odd"\\${n}`],
        }),
      );
    const report = await auditRoot(hostRootFs('/'), { paths: [dir], packages: false });
    expect(report.files).toHaveLength(names.length);
    expect([...reportJson(report)].join('')).toBe(`${JSON.stringify(report, null, 2)}\n`);
  });
});
