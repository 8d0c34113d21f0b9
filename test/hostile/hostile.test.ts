import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pareAsync } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { BOMB_ENV, type Form, inputPath, type LayerCompression, type Lie, writeHostile } from './generate.ts';

/**
 * Every lie of generate.ts, in every form pare reads, through every command that reads that form: each must be
 * refused with exit 2, a message naming the input, no stack trace, nothing on stdout (nothing derived from the image
 * shown), nothing written to the destination, nothing left in the rootfs cache or the temp dir.
 */

type Case = readonly [Form, LayerCompression, Lie];
const LAYER_LIES: Lie[] = ['diff-id', 'digest', 'bomb'];
const DOC_LIES: Lie[] = ['size-smaller', 'size-larger', 'layout-version', 'count'];
const cases: Case[] = [
  ...(['none', 'gzip', 'zstd'] as const).flatMap((c) => LAYER_LIES.map((l): Case => ['oci', c, l])),
  ...DOC_LIES.map((l): Case => ['oci', 'gzip', l]),
  ...[...LAYER_LIES, ...DOC_LIES].map((l): Case => ['oci-archive', 'gzip', l]),
  ['oci-archive', 'zstd', 'diff-id'],
  ['oci-archive', 'zstd', 'bomb'],
  ...(['diff-id', 'digest', 'count', 'bomb'] as const).map((l): Case => ['docker-archive', 'none', l]),
  ['docker-archive', 'gzip', 'diff-id'],
  ['docker-archive', 'gzip', 'bomb'],
];

/** Files (not directories) below `dir`, relative to it. */
function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

const work = tempDir('pare-hostile-');
const COMPILE_CACHE = process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), 'node-compile-cache');
let n = 0;
/** Runs pare with a private cache and temp dir; returns the result and those dirs. */
async function run(args: (out: string) => string[]) {
  const box = join(work, `run-${n++}`);
  const [cache, tmp, out] = [join(box, 'cache'), join(box, 'tmp'), join(box, 'out')];
  mkdirSync(tmp, { recursive: true });
  // The compile cache stays where it was (it lives under the temp dir): a cold one costs seconds per run.
  const r = await pareAsync(args(out), {
    env: { ...BOMB_ENV, XDG_CACHE_HOME: cache, TMPDIR: tmp, NODE_COMPILE_CACHE: COMPILE_CACHE },
  });
  return { ...r, cache, tmp, out };
}

const commands: Record<string, (ref: string) => (out: string) => string[]> = {
  inspect: (ref) => () => ['inspect', ref],
  copy: (ref) => (out) => ['copy', ref, `oci:${out}:t`],
  audit: (ref) => () => ['audit', ref],
  sbom: (ref) => () => ['sbom', ref],
  run: (ref) => () => ['run', ref, '--', '/hello.txt'],
  // Nothing listens on port 9: the refusal must come before any connection is tried.
  push: (ref) => () => ['push', ref, '127.0.0.1:9/hostile:t'],
};

describe('hostile images', () => {
  const refs = new Map<string, string>();
  beforeAll(async () => {
    for (const [form, c, lie] of [...cases, ['oci', 'gzip', 'good'] as Case])
      refs.set(`${form} ${c} ${lie}`, await writeHostile(work, form, c, lie));
  });

  it.concurrent.each(Object.keys(commands).filter((c) => c !== 'run' && c !== 'push'))(
    'the good image is read by %s (so every refusal below is the lie)',
    async (cmd) => {
      const r = await run(commands[cmd]!(refs.get('oci gzip good')!));
      expect(r.stderr).not.toMatch(/cannot (read|verify|decompress)/);
      expect(r.code, r.stderr).toBe(0);
    },
  );

  describe.each(cases)('%s with a %s layer: %s', (form, c, lie) => {
    // push: once per lie (the layer's compression does not matter to it).
    const cmds = Object.keys(commands).filter(
      (k) => k !== 'push' || c === 'gzip' || form === 'docker-archive',
    );
    it.concurrent.each(cmds)('is refused by pare %s', async (cmd) => {
      const ref = refs.get(`${form} ${c} ${lie}`)!;
      const r = await run(commands[cmd]!(ref));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(inputPath(ref));
      expect(r.stderr).toMatch(/^pare: error: cannot /);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
      expect(r.stdout).toBe('');
      expect(existsSync(r.out)).toBe(false);
      expect(filesBelow(r.cache)).toEqual([]);
      expect(filesBelow(r.tmp)).toEqual([]);
      const why: Record<Lie, RegExp> = {
        good: /^$/,
        'diff-id': /diff_ids/,
        digest: /hashes to|diff_ids/,
        'size-smaller': /more than the \d+ bytes promised|bytes, want|descriptor says/,
        'size-larger': /got \d+ bytes, want|descriptor says/,
        'layout-version': /imageLayoutVersion "9\.9\.9"/,
        count: /2 diff_ids/,
        bomb: /decompression bomb|more than .* bytes|ratio/,
      };
      expect(r.stderr).toMatch(why[lie]);
    });
  });

  describe('pare verify-store', () => {
    const expected: Partial<Record<Lie, string>> = {
      'diff-id': 'LAYER_DIFF_ID',
      digest: 'BLOB_DIGEST',
      'size-smaller': 'BLOB_SIZE',
      'size-larger': 'BLOB_SIZE',
      count: 'LAYER_COUNT',
      bomb: 'LAYER_LIMIT',
    };
    const layoutCases = cases.filter(([f, , l]) => f === 'oci' && l !== 'layout-version');
    it.concurrent.each(layoutCases)(
      'finds %s/%s %s with its own code (exit 1, a failed check)',
      async (_f, c, lie) => {
        const ref = refs.get(`oci ${c} ${lie}`)!;
        const r = await run(() => ['verify-store', inputPath(ref)]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stdout).toContain(`${expected[lie]}:`);
        expect(r.stderr).toBe('');
        expect(filesBelow(r.tmp)).toEqual([]);
      },
    );
    it('refuses an unknown imageLayoutVersion (exit 2)', async () => {
      const r = await run(() => ['verify-store', inputPath(refs.get('oci gzip layout-version')!)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/imageLayoutVersion "9\.9\.9", pare reads only 1\.0\.0/);
    });
    it('says the good layout is sound', async () => {
      const r = await run(() => ['verify-store', inputPath(refs.get('oci gzip good')!)]);
      expect(r.code, r.stdout).toBe(0);
    });
  });
});
