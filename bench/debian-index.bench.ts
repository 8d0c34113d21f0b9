/**
 * Reading the Debian archive's indexes: pare (InRelease verify + Packages.xz fetch, hash, decompress, scan) against
 * `apt-get update` doing the same for the same suites of the same mirror (the one the host apt sources name), cold
 * (empty cache / lists) and, for pare, warm (cache present). Prints wall times, ratios and peak RSS; asserts nothing.
 * Run alone: `npx node bench/debian-index.bench.ts`. Skips when the host has no Debian source or no apt-get.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveSuites } from '../src/debian/index.ts';
import { measure } from './lib.ts';

const suite = process.argv[2] ?? 'bookworm';
let suites: Awaited<ReturnType<typeof resolveSuites>>;
try {
  suites = await resolveSuites({ suite });
} catch (e) {
  console.log(`skip: ${(e as Error).message}`);
  process.exit(0);
}
const work = mkdtempSync(join(tmpdir(), 'pare-bench-index-'));
const lists = join(work, 'lists');
const cache = join(work, 'cache');
const sources = join(work, 'sources.list');
writeFileSync(
  sources,
  suites
    .map(
      (s) =>
        `deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${s.baseUrl} ${s.name} main\n`,
    )
    .join(''),
);
const apt = [
  'update',
  '-qq',
  `-oDir::Etc::sourcelist=${sources}`,
  '-oDir::Etc::sourceparts=-',
  `-oDir::State::Lists=${lists}`,
  `-oDir::Cache=${join(work, 'aptcache')}`,
  '-oAPT::Sandbox::User=root',
  '-oAcquire::Languages=none',
  '-oAcquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false',
  '-oAPT::Architectures::=amd64',
];
const freshLists = () => {
  rmSync(lists, { recursive: true, force: true });
  mkdirSync(join(lists, 'partial'), { recursive: true });
};
const script = join(work, 'pare-index.ts');
writeFileSync(
  script,
  `import { openArchive } from ${JSON.stringify(resolve(import.meta.dirname, '../src/debian/index.ts'))};
const a = await openArchive({ suite: ${JSON.stringify(suite)} }, { cacheDir: ${JSON.stringify(cache)}, architectures: ['amd64'] });
const n = (await a.packages()).length;
if (n < 1000) throw new Error('too few packages: ' + n);
`,
);

try {
  const peer = measure('apt-get update (cold)', 'apt-get', apt, { runs: 2, before: freshLists });
  const cold = measure('pare index (cold)', process.execPath, [script], {
    runs: 2,
    before: () => rmSync(cache, { recursive: true, force: true }),
  });
  const warm = measure('pare index (warm)', process.execPath, [script], { runs: 3, warm: true });
  for (const m of [peer, cold, warm]) {
    console.log(
      `${m.name.padEnd(24)} ${m.seconds.toFixed(2)} s  peak RSS ${m.rssMiB?.toFixed(0) ?? '?'} MiB`,
    );
  }
  console.log(`ratio cold pare / apt-get update: ${(cold.seconds / peer.seconds).toFixed(2)}x`);
  console.log(`ratio warm pare / apt-get update: ${(warm.seconds / peer.seconds).toFixed(2)}x`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
