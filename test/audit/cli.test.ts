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
    expect(report.schema).toBe('pare.audit/v2');
    expect(report.files.map((f: { path: string; violations: string[] }) => [f.path, f.violations])).toEqual([
      [join(dir, 'app'), ['relro=full', 'canary']],
    ]);
  });

  it('lists users of a symbol with --uses', async () => {
    const r = await pare('audit', dir, '--uses', 'gone');
    expect(r.stdout).toBe(`${join(dir, 'app')}\tgone\t(unresolved)\t-\n`);
  });

  describe('when a file cannot be checked (fail closed)', () => {
    const bad = mkdtempSync(join(tmpdir(), 'pare-cli-bad-'));
    const elf = craftElf({ machine: 62, interp: '/lib64/ld-linux-x86-64.so.2', needed: ['libc.so.6'] });
    // note: cut inside the program headers, and a 10-byte file that is only the magic and a few bytes more
    writeFileSync(join(bad, 'cut'), elf.subarray(0, 80));
    writeFileSync(join(bad, 'stub'), elf.subarray(0, 10));

    it.each([
      ['cut', 'ELF_TRUNCATED'],
      ['stub', 'ELF_TRUNCATED'],
    ])('a truncated ELF file (%s) under --require nx exits 1 and is listed', async (name, code) => {
      const r = await pare('audit', join(bad, name), '--require', 'nx', '--no-color');
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`error: ${join(bad, name)}: ${code}`);
      expect(r.stdout).toContain('gate failed: 1 could not be checked');
      const j = await pare('audit', join(bad, name), '--require', 'nx', '--json');
      expect(j.code).toBe(1);
      expect(JSON.parse(j.stdout).summary).toMatchObject({ errors: 1, violations: 0, passed: false });
    });

    it('a directory holding a truncated ELF file fails the gate; without a gate it is listed and exits 0', async () => {
      expect((await pare('audit', bad, '--require', 'nx')).code).toBe(1);
      const r = await pare('audit', bad, '--json');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).summary).toMatchObject({ errors: 2, passed: null });
    });

    it.each([
      ['script', '#!/bin/sh\necho hi\n', 'a script for "/bin/sh"'],
      ['lib.a', '!<arch>\nfoo.o/          0           0     0     644     0         `\n', 'an ar archive'],
      ['empty', '', 'an empty file'],
      ['text', 'hello, world\n', 'a file of 13 bytes starting with 68 65 6c 6c'],
    ])('a named %s is refused as such (exit 2), never an empty report', async (name, content, what) => {
      writeFileSync(join(dir, name), content);
      for (const args of [[], ['--require', 'nx'], ['--json']]) {
        const r = await pare('audit', join(dir, name), ...args);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr).toContain(`cannot audit ${JSON.stringify(join(dir, name))}: it is ${what}`);
      }
    });
  });

  it('says unknown, not 0/0, for fortify counts with no libc of the architecture and no glibc version', async () => {
    const foreign = mkdtempSync(join(tmpdir(), 'pare-cli-foreign-'));
    // note: an aarch64 program linked against another libc (no GLIBC_ version), in a root without any libc
    writeFileSync(
      join(foreign, 'app'),
      craftElf({
        machine: 183,
        interp: '/lib/ld-musl-aarch64.so.1',
        needed: ['libc.so'],
        imports: ['__memcpy_chk', 'strcpy'],
      }),
    );
    const r = await pare('audit', join(foreign, 'app'), '--root', foreign, '--json');
    expect(r.code).toBe(0);
    const fortify = JSON.parse(r.stdout).files[0].hardening.fortify;
    expect(fortify).toMatchObject({ fortified: null, fortifiable: null });
    expect(fortify.evidence).toContain('fortify counts unknown: no libc.so.6 of aarch64');
    const t = await pare('audit', join(foreign, 'app'), '--root', foreign, '--no-color');
    expect(t.stdout).toMatch(/Yes\s+unknown\s+unknown/);
    // note: a file without dynamic symbols counts 0 of 0 with any list, so that stays a number
    writeFileSync(join(foreign, 'static'), craftElf({ machine: 183 }));
    const s = await pare('audit', join(foreign, 'static'), '--root', foreign, '--json');
    expect(JSON.parse(s.stdout).files[0].hardening.fortify).toMatchObject({ fortified: 0, fortifiable: 0 });
  });

  it('exits 2 for an unknown requirement', async () => {
    const r = await pare('audit', dir, '--require', 'shiny');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown name');
  });
});
