/**
 * The vulnerable-function data (src/vex/data/<source>.json) against the real Debian packages it describes.
 *
 * A function listed for a function-level CVE that the library does not export would let `pare vex` prove every image
 * `not_affected` (nothing can import a name that does not exist), so every listed function must be a defined, global,
 * default-visibility function in the dynamic symbol table of one of the entry's libraries, read from the real .deb
 * of the entry's binary packages (fetched through pare's own archive client from the mirror of the host apt sources;
 * no host is named here). The symbol table is read twice: with pare's ELF parser and with binutils' `readelf
 * --dyn-syms` (and `nm -D`), and both must give the same exported functions. Every library must be the SONAME (or,
 * for a Python extension module, the file name) of a file in one of the entry's binary packages, and a `fixed`
 * version must be an entry of the package's Debian changelog that names the CVE.
 *
 * The schema part (fields, enums, sorted unique ids, file name = source) needs no network and always runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  compareVersions,
  cveIds,
  type DebPackage,
  defaultCacheDir,
  openArchive,
  type PackageRecord,
  parseChangelog,
  parseVersion,
  readAptSources,
  readDeb,
} from '../../src/debian/index.ts';
import { type ElfSymbol, openElf, SHN, STB, STT } from '../../src/elf/index.ts';
import { peer, peersRequired } from '../helpers/peers.ts';

const DATA_DIR = new URL('../../src/vex/data/', import.meta.url).pathname;
const KEYS = [
  'id',
  'binaries',
  'libraries',
  'functions',
  'reachability',
  'confidence',
  'fixed',
  'source_ref',
  'reasoning',
] as const;

interface Entry {
  id: string;
  binaries: string[];
  libraries: string[];
  functions: string[];
  reachability: 'function-level' | 'not-function-level';
  confidence: 'high' | 'medium' | 'low';
  fixed?: { bookworm: string };
  source_ref: string;
  reasoning: string;
}
interface DataFile {
  file: string;
  source: string;
  entries: Entry[];
}

/** Returns the problems of one data file's parsed JSON, each naming the file, the entry and the field. */
function schemaProblems(file: string, json: unknown): string[] {
  const out: string[] = [];
  const bad = (where: string, why: string) => out.push(`${file}: ${where}: ${why}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return [`${file}: not a JSON object`];
  const top = json as Record<string, unknown>;
  for (const k of Object.keys(top))
    if (k !== 'source' && k !== 'entries') bad('top level', `unknown field ${k}`);
  if (typeof top.source !== 'string' || `${top.source}.json` !== file)
    bad('source', `must be the Debian source package the file is named after (${file})`);
  if (!Array.isArray(top.entries) || top.entries.length === 0)
    return [...out, `${file}: entries must be a non-empty array`];
  const strings = (v: unknown, re: RegExp) =>
    Array.isArray(v) && v.every((s) => typeof s === 'string' && re.test(s)) && new Set(v).size === v.length;
  let previous = '';
  for (const [i, raw] of top.entries.entries()) {
    const e = raw as Record<string, unknown>;
    const at = `entries[${i}] (${String(e?.id)})`;
    if (typeof raw !== 'object' || raw === null) {
      bad(at, 'not an object');
      continue;
    }
    for (const k of Object.keys(e))
      if (!(KEYS as readonly string[]).includes(k)) bad(at, `unknown field ${k}`);
    const m = typeof e.id === 'string' ? /^CVE-(\d{4})-\d{4,}$/.exec(e.id) : null;
    if (!m || Number(m[1]) < 2021) bad(at, 'id must be a CVE id from 2021 on');
    if (typeof e.id === 'string') {
      if (cveOrder(e.id, previous) <= 0) bad(at, `ids must be unique and sorted (after ${previous})`);
      previous = e.id;
    }
    if (!strings(e.binaries, /^[a-z0-9][a-z0-9.+-]+$/) || (e.binaries as string[]).length === 0)
      bad(at, 'binaries: non-empty list of unique Debian binary package names');
    if (
      !strings(e.libraries, /^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.so(\.[0-9]+)*$/) ||
      (e.libraries as string[]).length === 0
    )
      bad(at, 'libraries: non-empty list of unique SONAMEs / extension module file names');
    if (!strings(e.functions, /^[A-Za-z_][A-Za-z0-9_]*$/)) bad(at, 'functions: list of unique C identifiers');
    if (e.reachability === 'function-level') {
      if (!Array.isArray(e.functions) || e.functions.length === 0)
        bad(at, 'a function-level entry lists functions');
    } else if (e.reachability !== 'not-function-level')
      bad(at, 'reachability: function-level | not-function-level');
    if (!['high', 'medium', 'low'].includes(e.confidence as string))
      bad(at, 'confidence: high | medium | low');
    if (e.fixed !== undefined) {
      const f = e.fixed as Record<string, unknown>;
      if (
        typeof f !== 'object' ||
        f === null ||
        Object.keys(f).join() !== 'bookworm' ||
        typeof f.bookworm !== 'string'
      )
        bad(at, 'fixed: { "bookworm": "<Debian version>" }');
      else
        try {
          parseVersion(f.bookworm, { strict: true });
        } catch {
          bad(at, `fixed.bookworm is not a Debian version: ${f.bookworm}`);
        }
    }
    if (typeof e.source_ref !== 'string' || !/^https:\/\/\S+$/.test(e.source_ref))
      bad(at, 'source_ref: an https URL of the advisory or fix commit');
    if (typeof e.reasoning !== 'string' || e.reasoning.trim().length < 20 || /\n/.test(e.reasoning))
      bad(at, 'reasoning: one line');
  }
  return out;
}

/** Orders CVE ids by year, then number (CVE-2024-9143 before CVE-2024-13176). */
function cveOrder(a: string, b: string): number {
  if (!b) return 1;
  const [, ya, na] = a.split('-');
  const [, yb, nb] = b.split('-');
  return Number(ya) - Number(yb) || Number(na) - Number(nb);
}

const files: DataFile[] = readdirSync(DATA_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((file) => {
    const json = JSON.parse(readFileSync(join(DATA_DIR, file), 'utf8')) as {
      source: string;
      entries: Entry[];
    };
    return { file, source: json.source, entries: json.entries };
  });
const entries = files.flatMap((f) => f.entries.map((e) => ({ ...e, source: f.source })));

describe('the vulnerable-function data files', () => {
  it('have the documented fields, enums, one line of reasoning, sorted unique CVE ids from 2021 on', () => {
    const problems = files.flatMap((f) =>
      schemaProblems(f.file, JSON.parse(readFileSync(join(DATA_DIR, f.file), 'utf8'))),
    );
    expect(problems).toEqual([]);
    // A CVE may appear in two files (a bundled copy of the code); the issue asks for at least 150 CVEs.
    expect(new Set(entries.map((e) => e.id)).size).toBeGreaterThanOrEqual(150);
  });

  it('schema check fails on a typo, a missing field, a function-level entry without functions', () => {
    const good = JSON.parse(readFileSync(join(DATA_DIR, files[0]!.file), 'utf8'));
    expect(schemaProblems(files[0]!.file, good)).toEqual([]);
    const mutate = (f: (e: Record<string, unknown>) => void) => {
      const copy = structuredClone(good);
      f(copy.entries[0]);
      return schemaProblems(files[0]!.file, copy);
    };
    expect(mutate((e) => (e.reachability = 'function_level'))).not.toEqual([]);
    expect(mutate((e) => delete e.source_ref)).not.toEqual([]);
    expect(
      mutate((e) => {
        e.reachability = 'function-level';
        e.functions = [];
      }),
    ).not.toEqual([]);
    expect(mutate((e) => (e.fixed = { bookworm: 'not a version' }))).not.toEqual([]);
    expect(mutate((e) => (e.functon = ['x']))).not.toEqual([]);
    expect(schemaProblems('zlib.json', good)).not.toEqual([]);
  });
});

// ---- against the real packages ----

const suite = (await readAptSources().catch(() => []))
  .filter((e) => e.enabled && e.types.includes('deb'))
  .flatMap((e) => e.suites)
  .find((s) => /^[a-z]+$/.test(s));
let archive: Awaited<ReturnType<typeof openArchive>> | undefined;
let skipReason = suite ? '' : 'no Debian release suite in the host apt sources';
if (suite && suite !== 'bookworm')
  skipReason = `the host apt sources name ${suite}; the data describes bookworm`;
else if (suite) {
  try {
    // Security and updates too: the newest version of each package carries the changelog entries `fixed` names.
    archive = await openArchive({ suite }, { cacheDir: defaultCacheDir(), architectures: ['amd64'] });
  } catch (e) {
    skipReason = `the Debian mirror of the host apt sources cannot be used: ${(e as Error).message}`;
  }
}
if (!archive && suite === 'bookworm' && peersRequired)
  throw new Error(`PARE_REQUIRE_PEERS=1 but ${skipReason}`);
const readelf = peer('readelf');
const nm = peer('nm');
if (!readelf || !nm) {
  const why = 'peer tool(s) not installed: readelf, nm (binutils)';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${why}`);
  skipReason ||= why;
}
if (skipReason) console.warn(`[skip] vex data against the real bookworm libraries: ${skipReason}`);

/** A function an executable or library can import from this object: defined, global/weak, default or protected. */
function exportedFunction(s: ElfSymbol): boolean {
  return (
    s.shndx !== SHN.UNDEF &&
    (s.bind === STB.GLOBAL || s.bind === STB.WEAK || s.bind === STB.GNU_UNIQUE) &&
    (s.type === STT.FUNC || s.type === STT.GNU_IFUNC) &&
    (s.visibility === 0 || s.visibility === 3)
  );
}

/** Functions readelf --dyn-syms -W lists as defined GLOBAL/WEAK/UNIQUE FUNC/IFUNC with DEFAULT/PROTECTED visibility. */
function readelfExports(path: string): Set<string> {
  const out = new Set<string>();
  const text = execFileSync(readelf!, ['--dyn-syms', '-W', path], { encoding: 'utf8', maxBuffer: 256 << 20 });
  for (const line of text.split('\n')) {
    const c = line.trim().split(/\s+/);
    if (c.length < 8 || !/^\d+:$/.test(c[0]!)) continue;
    const [, , , type, bind, vis, ndx, name] = c;
    if (!/^(FUNC|IFUNC)$/.test(type!) || !/^(GLOBAL|WEAK|UNIQUE)$/.test(bind!)) continue;
    if (!/^(DEFAULT|PROTECTED)$/.test(vis!) || ndx === 'UND') continue;
    out.add(name!.replace(/@.*$/, ''));
  }
  return out;
}

interface Library {
  /** SONAME, or the file name of an object without one (a Python extension module). */
  name: string;
  packageName: string;
  path: string;
  /** Exported functions as pare's ELF parser reads them. */
  exports: Set<string>;
  hostCopy: string;
}

const tmp = mkdtempSync(join(tmpdir(), 'pare-vex-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const debs = new Map<string, DebPackage>();
const libraries = new Map<string, Library[]>();

async function loadPackages(): Promise<void> {
  const named = new Set(entries.flatMap((e) => e.libraries));
  const wanted = [...new Set(entries.flatMap((e) => e.binaries))].sort();
  const records = await archive!.packages();
  const newest = new Map<string, PackageRecord>();
  for (const r of records)
    if (r.architecture === 'amd64' && wanted.includes(r.name)) {
      const had = newest.get(r.name);
      if (!had || compareVersions(r.version, had.version) > 0) newest.set(r.name, r);
    }
  expect(
    wanted.filter((w) => !newest.has(w)),
    'binary packages missing from bookworm amd64',
  ).toEqual([]);
  const fetched = await archive!.fetchDebs([...newest.values()]);
  for (const deb of fetched) {
    const pkg = await readDeb(deb.content.open(), {
      expect: { name: deb.record.name, version: deb.record.version, architecture: 'amd64' },
    });
    debs.set(deb.record.name, pkg);
    for (const path of pkg.tree.paths()) {
      const f = pkg.tree.file(path);
      // Only files named like a library the data names (libcurl.so.4 → libcurl.so.4.8.0); the SONAME is then read
      // from the file, so a misnamed library is still reported missing. Skips e.g. libc6's 250 gconv modules.
      const file = basename(path);
      if (!f || f.content.size < 64 || ![...named].some((n) => file === n || file.startsWith(`${n}.`)))
        continue;
      const head = await f.content.bytes();
      if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) continue;
      const elf = await openElf(f.content, path);
      const dyn = await elf.dynamic();
      const name = dyn?.soname ?? basename(path);
      const exports = new Set((await elf.dynamicSymbols()).filter(exportedFunction).map((s) => s.name));
      const hostCopy = join(tmp, `${deb.record.name}--${basename(path)}`);
      writeFileSync(hostCopy, head);
      const list = libraries.get(name) ?? [];
      list.push({ name, packageName: deb.record.name, path, exports, hostCopy });
      libraries.set(name, list);
    }
  }
}

/** The Debian source package of a fetched binary package (control Source without its version, else Package). */
function sourceOf(binary: string): string {
  const c = debs.get(binary)!.control;
  return (c.get('Source') ?? c.get('Package') ?? '').replace(/\s*\(.*\)$/, '');
}

/** Returns the problems of the entries against the libraries read from the packages: one line each. */
function exportProblems(list: readonly (Entry & { source: string })[]): string[] {
  const out: string[] = [];
  for (const e of list) {
    for (const b of e.binaries)
      if (sourceOf(b) !== e.source) out.push(`${e.source}.json ${e.id}: ${b} is built from ${sourceOf(b)}`);
    const libs = e.libraries.flatMap((l) => {
      const found = (libraries.get(l) ?? []).filter((x) => e.binaries.includes(x.packageName));
      if (found.length === 0)
        out.push(`${e.source}.json ${e.id}: library ${l} is in none of ${e.binaries.join(', ')}`);
      return found;
    });
    for (const fn of e.functions)
      if (!libs.some((l) => l.exports.has(fn)))
        out.push(`${e.source}.json ${e.id}: ${fn} is not exported by ${e.libraries.join(', ')}`);
  }
  return out;
}

describe.skipIf(!archive || !readelf || !nm)('the vulnerable-function data against bookworm amd64', () => {
  it('every library is in the entry’s packages, and every listed function is exported by it', {
    timeout: 600_000,
  }, async () => {
    await loadPackages();
    expect(exportProblems(entries)).toEqual([]);

    // The check can fail: a one-letter typo and a function of another library are both reported.
    const e = entries.find((x) => x.reachability === 'function-level')!;
    const typo = { ...e, functions: [`${e.functions[0]!}x`] };
    expect(exportProblems([typo])).toEqual([
      `${e.source}.json ${e.id}: ${e.functions[0]}x is not exported by ${e.libraries.join(', ')}`,
    ]);
    expect(exportProblems([{ ...e, functions: ['inflateGetHeader'] }])).toHaveLength(
      e.source === 'zlib' ? 0 : 1,
    );
    expect(exportProblems([{ ...e, libraries: ['libnothere.so.1'] }])).toHaveLength(e.functions.length + 1);
    expect(exportProblems([{ ...e, source: 'zlib' }]).join()).toContain(`${e.binaries[0]} is built from`);
  });

  it('pare’s ELF parser and readelf/nm agree on the exported functions of every library the data names', () => {
    const named = new Set(entries.flatMap((e) => e.libraries));
    let compared = 0;
    for (const name of [...named].sort())
      for (const lib of libraries.get(name) ?? []) {
        expect([...lib.exports].sort(), `${lib.packageName}:${lib.path}`).toEqual(
          [...readelfExports(lib.hostCopy)].sort(),
        );
        const nmText = execFileSync(nm!, ['-D', '--defined-only', lib.hostCopy], {
          encoding: 'utf8',
          maxBuffer: 256 << 20,
        });
        const nmNames = new Set(nmText.split('\n').map((l) => l.trim().split(/\s+/)[2]?.replace(/@.*$/, '')));
        const listed = entries.filter((e) => e.libraries.includes(name)).flatMap((e) => e.functions);
        for (const fn of listed)
          if (lib.exports.has(fn)) expect(nmNames.has(fn), `nm -D lists ${fn} in ${name}`).toBe(true);
        compared++;
      }
    expect(compared).toBeGreaterThanOrEqual(named.size);
  });

  it('a fixed version is an entry of the package’s Debian changelog that names the CVE', async () => {
    const missing: string[] = [];
    let checked = 0;
    for (const e of entries) {
      if (!e.fixed) continue;
      // The entry's own packages first, then any fetched package of the same source (a doc directory may be a link
      // to another binary's, e.g. libpython3.11-stdlib → libpython3.11-minimal).
      const names = [...e.binaries, ...[...debs.keys()].filter((b) => sourceOf(b) === e.source).sort()];
      const logs = names.flatMap((b) => {
        const f = debs.get(b)!.tree.file(`/usr/share/doc/${b}/changelog.Debian.gz`);
        return f ? [f] : [];
      });
      if (logs.length === 0) {
        missing.push(`${e.source}.json ${e.id}: no changelog in the packages of ${e.source} to verify fixed`);
        continue;
      }
      const text = gunzipSync(await logs[0]!.content.bytes()).toString('utf8');
      const hit = parseChangelog(text).find((c) => c.version === e.fixed!.bookworm);
      if (!hit || !cveIds(hit.text).includes(e.id))
        missing.push(
          `${e.source}.json ${e.id}: the changelog entry ${e.fixed.bookworm} does not name ${e.id}`,
        );
      checked++;
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  });
});
