import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseControl } from '../../src/debian/control.ts';
import { compareVersions } from '../../src/debian/version.ts';
import { peersOrSkip } from '../helpers/peers.ts';

/**
 * Our version ordering against the real `dpkg --compare-versions`, on thousands of generated pairs and on every
 * version installed on this host. dpkg is run from one `sh` loop per chunk of pairs (a process per pair costs ~1.5 ms;
 * a node spawn per pair would cost far more), chunks in parallel.
 */

const peers = peersOrSkip('dpkg', 'sh');
const run = promisify(execFile);
const STATUS = '/var/lib/dpkg/status';
const CHUNKS = 4;

const SCRIPT = `while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done`;

async function dpkgCompare(pairs: readonly (readonly [string, string])[]): Promise<number[]> {
  const size = Math.ceil(pairs.length / CHUNKS);
  const chunks = Array.from({ length: CHUNKS }, (_, i) => pairs.slice(i * size, (i + 1) * size));
  const outs = await Promise.all(
    chunks.map(async (chunk) => {
      const child = run(peers.paths.sh!, ['-c', SCRIPT], { maxBuffer: 1 << 24 });
      child.child.stdin!.end(chunk.map(([a, b]) => `${a} ${b}\n`).join(''));
      const { stdout } = await child;
      return stdout.trim() === '' ? [] : stdout.trim().split('\n').map(Number);
    }),
  );
  return outs.flat();
}

function mismatches(pairs: readonly (readonly [string, string])[], want: number[]): string[] {
  expect(want).toHaveLength(pairs.length);
  const bad: string[] = [];
  pairs.forEach(([a, b], i) => {
    const got = compareVersions(a, b);
    if (got !== want[i]) bad.push(`${a} vs ${b}: dpkg ${want[i]}, pare ${got}`);
  });
  return bad;
}

const char = fc.constantFrom(...'0123456789aAzZ.+~'.split(''));
const revChar = fc.constantFrom(...'0019aZ.+~'.split(''));
const versionArb = fc
  .tuple(
    fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    fc.integer({ min: 0, max: 12 }),
    fc.array(char, { maxLength: 7 }),
    fc.option(fc.array(revChar, { minLength: 1, maxLength: 4 }), { nil: undefined }),
  )
  .map(([e, d, u, r]) => `${e === undefined ? '' : `${e}:`}${d}${u.join('')}${r ? `-${r.join('')}` : ''}`);
/** Pairs that share a prefix, so the comparison reaches the interesting characters instead of stopping early. */
const nearPairArb = fc
  .tuple(versionArb, fc.array(char, { maxLength: 3 }), fc.array(char, { maxLength: 3 }))
  .map(([v, x, y]) => {
    const dash = v.lastIndexOf('-');
    const [up, rev] = dash < 0 ? [v, ''] : [v.slice(0, dash), v.slice(dash)];
    return [`${up}${x.join('')}${rev}`, `${up}${y.join('')}${rev}`] as const;
  });

describe.skipIf(peers.skip)('compareVersions agrees with dpkg --compare-versions', () => {
  it('on 4000 generated pairs', async () => {
    const pairs = [
      ...fc.sample(fc.tuple(versionArb, versionArb), { numRuns: 1500, seed: 42 }),
      ...fc.sample(nearPairArb, { numRuns: 2500, seed: 43 }),
    ];
    expect(mismatches(pairs, await dpkgCompare(pairs))).toEqual([]);
  });

  it.skipIf(!existsSync(STATUS))(
    'on every version in the host dpkg status, sorted and at random',
    async () => {
      const versions = [
        ...new Set(
          parseControl(readFileSync(STATUS, 'utf8'), { source: STATUS }).flatMap((p) => {
            const v = p.get('Version');
            return v ? [v] : [];
          }),
        ),
      ].sort(compareVersions);
      expect(versions.length).toBeGreaterThan(50);
      // note: agreeing on every adjacent pair of our sorted list proves dpkg orders the whole list the same way.
      const adjacent = versions.slice(1).map((v, i) => [versions[i]!, v] as const);
      const random = fc.sample(fc.tuple(fc.constantFrom(...versions), fc.constantFrom(...versions)), {
        numRuns: 2000,
        seed: 7,
      });
      const pairs = [...adjacent, ...random];
      expect(mismatches(pairs, await dpkgCompare(pairs))).toEqual([]);
    },
  );
});
