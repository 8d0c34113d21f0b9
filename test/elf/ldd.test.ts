/**
 * The library closure equals `ldd` for every dynamically linked ELF file in the host's /usr/bin (root = /). ldd runs
 * `ld.so --list PATH`, which takes $ORIGIN of the program from the path as given, so the Loader runs with
 * `programOrigin: 'as-given'` here (a real exec resolves /proc/self/exe; see LoaderOptions.programOrigin).
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hostRootFs, Loader } from '../../src/elf/index.ts';
import { peersOrSkip } from '../helpers/peers.ts';

const run = promisify(execFile);
const peers = peersOrSkip('ldd');

function lddSet(out: string): string[] {
  const s = new Set<string>();
  for (const line of out.split('\n')) {
    let m = /^\s+(\S+) => (not found|\S+)/.exec(line);
    if (m) {
      s.add(`${m[1]} => ${m[2]}`);
      continue;
    }
    m = /^\s+(\/\S+) \(0x/.exec(line);
    if (m) s.add(m[1]!);
  }
  return [...s].sort();
}

describe.skipIf(peers.skip)('Loader.closure', () => {
  it('equals ldd for every dynamic ELF file in /usr/bin', { timeout: 600_000 }, async () => {
    const loader = new Loader(hostRootFs('/'), { programOrigin: 'as-given' });
    const jobs: { path: string; want: Promise<string[]>; got: string[] }[] = [];
    for (const n of readdirSync('/usr/bin').sort()) {
      const path = `/usr/bin/${n}`;
      const c = await loader.closure(path).catch(() => undefined);
      if (!c || (c.objects.length === 1 && !c.missingInterpreter)) continue; // not ELF, or static
      const got = new Set<string>();
      for (const o of c.objects.slice(1))
        got.add(o.foundBy === 'interpreter' ? o.path : `${o.name} => ${o.path}`);
      for (const m of c.missing) got.add(`${m} => not found`);
      if (c.missingInterpreter) got.add(c.missingInterpreter);
      jobs.push({ path, got: [...got].sort(), want: Promise.resolve([]) });
    }
    expect(jobs.length).toBeGreaterThan(200);
    let next = 0;
    const wants: string[][] = new Array(jobs.length);
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < jobs.length) {
          const i = next++;
          const r = await run(peers.paths.ldd!, [jobs[i]!.path]).catch((e: { stdout: string }) => e);
          wants[i] = lddSet(r.stdout);
        }
      }),
    );
    const diffs = jobs.flatMap((j, i) =>
      JSON.stringify(j.got) === JSON.stringify(wants[i])
        ? []
        : [{ path: j.path, ldd: wants[i], pare: j.got }],
    );
    expect(diffs).toEqual([]);
  });
});
