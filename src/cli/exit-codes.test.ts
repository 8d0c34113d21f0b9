import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseRequirements } from '../audit/index.ts';
import { readDeb } from '../debian/deb.ts';
import { parseControl } from '../debian/index.ts';
import { parseDigest } from '../digest/index.ts';
import { craftElf, openElf } from '../elf/index.ts';
import { AttestError, LayoutError, RegistryError, RunError, TarError } from '../errors.ts';
import { bufferContent } from '../fstree/index.ts';
import { readTar } from '../tar/index.ts';
import { EXIT_RULES, exitCodeOf } from './exit-codes.ts';
import { reportError } from './main.ts';

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}
/** Returns what `f` throws (or rejects with); fails the test when it does not throw. */
async function thrown(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}
const diskFull = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('exitCodeOf', () => {
  describe('when the error comes from a real reader refusing input', () => {
    // note: each row makes the library refuse something, as a command would meet it; the rule must say 2.
    it.each<[string, () => unknown, string]>([
      ['a malformed digest', () => parseDigest('sha256:xyz'), 'DIGEST_INVALID'],
      [
        'a truncated tar stream',
        async () => {
          for await (const _ of readTar(once(new Uint8Array(700).fill(0x41))));
        },
        'TAR_',
      ],
      [
        'a .deb that is not an ar archive',
        () => readDeb(once(Buffer.from('hello, world\n'))),
        'DEBIAN_DEB_INVALID',
      ],
      ['a control file with a syntax error', () => parseControl('no colon here\n'), 'CONTROL_SYNTAX'],
      [
        'a truncated ELF file',
        () => openElf(bufferContent(craftElf({ machine: 62 }).subarray(0, 10)), 'x'),
        'ELF_TRUNCATED',
      ],
      ['an unknown --require name', () => parseRequirements('shiny'), 'USAGE'],
    ])('%s exits 2', async (_what, f, code) => {
      const e = await thrown(f);
      expect((e as { code: string }).code.startsWith(code)).toBe(true);
      expect(exitCodeOf(e)).toBe(2);
    });
  });

  describe('when a check failed or an operation could not be completed', () => {
    it.each<[string, Error, 1 | 2]>([
      ['a signature that does not verify', new AttestError('ATTEST_SIGNATURE_INVALID', 'x'), 1],
      ['no signature found', new AttestError('ATTEST_NOT_FOUND', 'x'), 1],
      ['a network failure', new RegistryError('REGISTRY_NETWORK', 'x'), 1],
      ['a layout locked by another pare', new LayoutError('LAYOUT_LOCKED', 'x'), 1],
      ['an internal error', new TypeError('x is undefined'), 1],
      ['a disk error', diskFull, 1],
    ])('%s exits %i', (_what, e, want) => {
      expect(exitCodeOf(e)).toBe(want);
    });
  });

  describe("when the rule is 'cause'", () => {
    const tar = new TarError('TAR_UNSAFE_PATH', 'cannot read layer: "../x" escapes');
    it.each<[string, unknown, 1 | 2]>([
      ['a hostile layer', tar, 2],
      ['a hostile layer under a plain Error', Object.assign(new Error('wrapped'), { cause: tar }), 2],
      ['a full disk', diskFull, 1],
      ['no cause at all', undefined, 1],
    ])('an unpack failure caused by %s exits %i', (_what, cause, want) => {
      expect(exitCodeOf(new RunError('RUN_UNPACK_FAILED', 'cannot unpack', { cause }))).toBe(want);
    });

    it('stops on a cause cycle', () => {
      const a = new RunError('RUN_UNPACK_FAILED', 'a');
      const b = new RunError('RUN_UNPACK_FAILED', 'b', { cause: a });
      Object.defineProperty(a, 'cause', { value: b });
      expect(exitCodeOf(a)).toBe(1);
    });
  });

  it('classifies every code as 1, 2 or cause', () => {
    const values = new Set(Object.values(EXIT_RULES));
    expect([...values].sort()).toEqual([1, 2, 'cause']);
  });
});

describe('reportError', () => {
  it.each<[string, unknown, number]>([
    ['a commander usage error', new CommanderError(1, 'commander.missingArgument', 'missing'), 2],
    ['help', new CommanderError(0, 'commander.helpDisplayed', ''), 0],
    ['a refused blob', new RegistryError('REGISTRY_DIGEST', 'cannot use blob: content hashes to x'), 2],
  ])('maps %s to %i', (_what, e, want) => {
    const write = process.stderr.write;
    process.stderr.write = () => true;
    try {
      expect(reportError(e)).toBe(want);
    } finally {
      process.stderr.write = write;
    }
  });
});
