// Slicing cost and effect on real Debian package sets (fetched with the host's apt, cached like the tests):
// - time to slice vs time to read the .debs and assemble the root filesystem (the build's own work before slicing);
// - sliced/unsliced size for each set. Goals (issue 6): slicing ≤ 20% of the build, python3 ≤ 50% of its set.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferContent, fileEntry, TreeBuilder } from '../src/fstree/index.ts';
import { type SliceOptions, sliceTree } from '../src/slice/index.ts';
import { aptAvailable, aptSelection, assembleSet, fetchDebs, SETS } from '../test/slice/debs.ts';
import { have } from './lib.ts';

if (!aptAvailable()) {
  process.stdout.write('skip: apt-get/dpkg not available\n');
  process.exit(0);
}

const PROGRAM = `#include <openssl/ssl.h>
int main(void) { SSL_CTX *c = SSL_CTX_new(TLS_client_method()); return c ? 0 : 1; }
`;

const MiB = 2 ** 20;
const rows: string[][] = [
  ['set', 'packages', 'assemble', 'slice', 'slice/assemble', 'unsliced', 'sliced', 'sliced/unsliced'],
];

for (const name of ['python3', 'nodejs', 'cc'] as const) {
  const files = fetchDebs(aptSelection(SETS[name]));
  let assembleBest = Infinity;
  let set: Awaited<ReturnType<typeof assembleSet>> | undefined;
  for (let i = 0; i < 2; i++) {
    const t0 = process.hrtime.bigint();
    set = await assembleSet(files);
    assembleBest = Math.min(assembleBest, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  let tree = set!.assembled.tree;
  let options: SliceOptions = {
    entrypoint: [name === 'nodejs' ? 'node' : 'python3'],
    owners: set!.assembled.owners,
  };
  if (name === 'cc') {
    if (!have('gcc')) {
      options = { executables: ['openssl'], owners: set!.assembled.owners };
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'pare-bench-cc-'));
      writeFileSync(join(dir, 'p.c'), PROGRAM);
      execFileSync('gcc', ['-O2', '-o', join(dir, 'p'), join(dir, 'p.c'), '-lssl', '-lcrypto']);
      tree = TreeBuilder.from(tree)
        .put('/usr/local/bin/p', fileEntry(bufferContent(readFileSync(join(dir, 'p'))), { mode: 0o755 }))
        .build();
      rmSync(dir, { recursive: true, force: true });
      options = { entrypoint: ['/usr/local/bin/p'], owners: set!.assembled.owners };
    }
  }
  let sliceBest = Infinity;
  let result: Awaited<ReturnType<typeof sliceTree>> | undefined;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    result = await sliceTree(tree, options);
    sliceBest = Math.min(sliceBest, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const r = result!;
  rows.push([
    name,
    String(files.length),
    `${assembleBest.toFixed(2)} s`,
    `${sliceBest.toFixed(2)} s`,
    `${((100 * sliceBest) / assembleBest).toFixed(1)}%`,
    `${(r.before.bytes / MiB).toFixed(1)} MiB`,
    `${(r.after.bytes / MiB).toFixed(1)} MiB`,
    `${((100 * r.after.bytes) / r.before.bytes).toFixed(1)}%`,
  ]);
}

const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
process.stdout.write('\n## slice: time vs assembly, size sliced/unsliced\n');
for (const r of rows)
  process.stdout.write(
    `${r
      .map((c, i) => c.padEnd(w[i]!))
      .join('  ')
      .trimEnd()}\n`,
  );
process.stdout.write('goal: slice ≤ 20% of assemble for python3; python3 sliced ≤ 50% of unsliced\n');
