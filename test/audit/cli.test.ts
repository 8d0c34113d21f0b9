/** `pare audit` end to end, as the README shows it: exit codes, JSON schema, --uses, and a bad --require spec. */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { craftElf } from '../../src/elf/index.ts';

const run = promisify(execFile);
const PARE = resolve(import.meta.dirname, '../../bin/pare.js');
const pare = (...args: string[]) =>
  run(process.execPath, [PARE, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

describe('pare audit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pare-cli-'));
  // note: a crafted x86-64 PIE without canary or BIND_NOW, needing a library the host does not have.
  writeFileSync(
    join(dir, 'app'),
    craftElf({
      machine: 62,
      interp: '/lib64/ld-linux-x86-64.so.2',
      needed: ['libpare-none.so.1'],
      debug: true,
      imports: ['gone'],
    }),
    { mode: 0o755 },
  );
  writeFileSync(join(dir, 'notes.txt'), 'not an ELF file\n');

  it('prints the checksec-style table and exits 0 without a gate', async () => {
    const r = await pare('audit', dir, '--no-color');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^RELRO\s+STACK CANARY\s+NX\s+PIE/);
    expect(r.stdout).toContain(`missing: ${join(dir, 'app')}: libpare-none.so.1`);
  });

  it('exits 1 when --require is violated and names the violations', async () => {
    const r = await pare('audit', dir, '--json', '--require', 'relro=full,pie,nx,canary');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.schema).toBe('pare.audit/v1');
    expect(report.files.map((f: { path: string; violations: string[] }) => [f.path, f.violations])).toEqual([
      [join(dir, 'app'), ['relro=full', 'canary']],
    ]);
  });

  it('lists users of a symbol with --uses', async () => {
    const r = await pare('audit', dir, '--uses', 'gone');
    expect(r.stdout).toBe(`${join(dir, 'app')}\tgone\t(unresolved)\t-\n`);
  });

  it('exits 2 for an unknown requirement', async () => {
    const r = await pare('audit', dir, '--require', 'shiny');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown name');
  });
});
