import type { AuditFile, AuditReport } from '../audit/index.ts';
import { compareVersions, readChangelog } from '../debian/index.ts';
import type { Tree } from '../fstree/index.ts';
import type { SbomPackage } from '../sbom/index.ts';
import type { VexData, VexDataEntry } from './data.ts';
import type { Finding } from './findings.ts';

/**
 * The decision for one finding, most specific first (issue 19, src/vex/README.md):
 * 1. not_affected / component_not_present: the package is not installed, or none of the CVE's library files is in
 *    the image (sliced away);
 * 2. not_affected / vulnerable_code_not_present: the installed package's Debian changelog names the CVE, or the
 *    data's fixed version for the image's release is at or below the installed source version;
 * 3. not_affected / vulnerable_code_not_in_execute_path: a function-level entry, its library present, no ELF file
 *    (other than the CVE's own libraries) imports or links any listed function, no file that imports dlopen names the
 *    library, no interpreter with an FFI module is in the image, and every ELF file was read;
 * 4. affected (a function-level entry whose function is imported, naming the importers; a not-function-level entry
 *    whose library is present), or under_investigation (no data, a dlopen or FFI path, an unread ELF file, a report
 *    of another version).
 * Never not_affected from reachability for a not-function-level entry: unknown beats a wrong not_affected.
 */

export type VexStatus = 'not_affected' | 'affected' | 'under_investigation';
export type VexJustification =
  | 'component_not_present'
  | 'vulnerable_code_not_present'
  | 'vulnerable_code_not_in_execute_path';

/** The evidence chain of one decision, for `--explain` and the impact statement. */
export interface Evidence {
  /** The installed package the finding names (`name version arch`), or null when not installed. */
  readonly package: string | null;
  /** The data entries used (`file` and id). */
  readonly data: readonly string[];
  /** Library files of the entries found in the image (paths). */
  readonly libraries: readonly string[];
  /** Files that import (or statically link) a listed function: `path: function (library)`. */
  readonly importers: readonly string[];
  /** Files that import dlopen, with whether they name a library of the entry. */
  readonly dlopenUsers: readonly string[];
  /** FFI modules found (ctypes, cffi, …). */
  readonly ffi: readonly string[];
  /** Step by step, what was checked and found. */
  readonly steps: readonly string[];
}

export interface Decision {
  readonly finding: Finding;
  readonly status: VexStatus;
  readonly justification: VexJustification | undefined;
  /** One paragraph: why (the statement's impact_statement, or status_notes). */
  readonly impact: string;
  /** What to do (affected only). */
  readonly action: string | undefined;
  /** The Debian purl of the installed package (pare's SBOM purl), when installed. */
  readonly purl: string | undefined;
  readonly evidence: Evidence;
}

/** What the decisions are computed from: the image's files, audit and packages, and the data. */
export interface VexInput {
  readonly tree: Tree;
  /** `auditTree(tree)` with imports and packages (the analysis `pare audit --uses` prints). */
  readonly audit: AuditReport;
  /** The installed packages with their purls (`inventory(tree).packages`); undefined when the image has no dpkg database. */
  readonly packages: readonly SbomPackage[] | undefined;
  /** The image's Debian codename (os-release VERSION_CODENAME), for the data's `fixed` versions. */
  readonly codename: string | undefined;
  readonly data: VexData;
}

/**
 * Basenames of FFI modules: an interpreter with one can call any function of any library it can open, so nothing it
 * could reach is provably outside the execute path. Python ctypes and cffi, PyGObject (calls through typelibs), Ruby
 * fiddle, Node's ffi-napi and koffi, Perl's FFI::Platypus.
 */
const FFI_MODULES: readonly [RegExp, string][] = [
  [/^_ctypes(\..+)?\.so$/, 'Python ctypes'],
  [/^_cffi_backend(\..+)?\.so$/, 'Python cffi'],
  [/^_gi(\..+)?\.so$/, 'PyGObject'],
  [/^fiddle\.so$/, 'Ruby fiddle'],
  [/^ffi_bindings\.node$/, 'Node ffi-napi'],
  [/^koffi\.node$/, 'Node koffi'],
  [/^Platypus\.so$/, 'Perl FFI::Platypus'],
];
const DLOPEN = new Set(['dlopen', 'dlmopen']);

/** How many times `needle` occurs in `bytes` (overlaps included). */
function occurrences(bytes: Buffer, needle: string): number {
  let n = 0;
  for (let i = bytes.indexOf(needle); i >= 0; i = bytes.indexOf(needle, i + 1)) n++;
  return n;
}

/** Sorted unique strings. */
function uniq(a: Iterable<string>): string[] {
  return [...new Set(a)].sort();
}

function base(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** What the image holds, computed once for all findings. */
class ImageFacts {
  readonly byName = new Map<string, SbomPackage[]>();
  /** Regular files (and symlinks to them) by basename: paths. */
  private readonly byBase = new Map<string, string[]>();
  readonly ffi: string[] = [];
  readonly dlopenUsers: AuditFile[];
  private readonly bytes = new Map<string, Promise<Buffer>>();
  readonly input: VexInput;

  constructor(input: VexInput) {
    this.input = input;
    for (const p of input.packages ?? []) {
      const list = this.byName.get(p.name);
      if (list) list.push(p);
      else this.byName.set(p.name, [p]);
    }
    for (const path of input.tree.paths()) {
      const e = input.tree.get(path);
      if (e?.kind !== 'file' && e?.kind !== 'hardlink' && e?.kind !== 'symlink') continue;
      if (e.kind === 'symlink' && !input.tree.file(input.tree.resolve(path).path)) continue;
      const b = base(path);
      const list = this.byBase.get(b);
      if (list) list.push(path);
      else this.byBase.set(b, [path]);
      for (const [re, what] of FFI_MODULES) if (re.test(b)) this.ffi.push(`${path} (${what})`);
    }
    this.ffi.sort();
    this.dlopenUsers = input.audit.files.filter(
      (f) =>
        (f.imports ?? []).some((i) => DLOPEN.has(i.name)) || f.linkedFunctions.some((n) => DLOPEN.has(n)),
    );
  }

  /** Paths in the image whose basename is one of `names` (files, and symlinks that reach a file). */
  libraryFiles(names: readonly string[]): string[] {
    return uniq(names.flatMap((n) => this.byBase.get(n) ?? []));
  }

  /** The file's bytes (for the dlopen string check), read once. */
  read(path: string): Promise<Buffer> {
    let hit = this.bytes.get(path);
    if (!hit) {
      hit = this.input.tree.readFile(path).then((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      this.bytes.set(path, hit);
    }
    return hit;
  }
}

const RANK: Readonly<Record<VexStatus, number>> = { affected: 0, under_investigation: 1, not_affected: 2 };

/** Returns the decision for each finding, in the findings' order. */
export async function decide(input: VexInput, findings: readonly Finding[]): Promise<Decision[]> {
  const facts = new ImageFacts(input);
  const out: Decision[] = [];
  for (const f of findings) out.push(await decideOne(facts, f));
  return out;
}

async function decideOne(facts: ImageFacts, finding: Finding): Promise<Decision> {
  const { input } = facts;
  const steps: string[] = [];
  const make = (
    status: VexStatus,
    justification: VexJustification | undefined,
    impact: string,
    extra: Partial<Omit<Evidence, 'steps'>> & { action?: string; purl?: string; pkg?: string | null },
  ): Decision => ({
    finding,
    status,
    justification,
    impact,
    action: extra.action,
    purl: extra.purl,
    evidence: {
      package: extra.pkg ?? null,
      data: extra.data ?? [],
      libraries: extra.libraries ?? [],
      importers: extra.importers ?? [],
      dlopenUsers: extra.dlopenUsers ?? [],
      ffi: extra.ffi ?? [],
      steps,
    },
  });
  // Every entry for the id, whatever its package: named in the evidence even when no package is found.
  const anyData = (input.data.byId.get(finding.id) ?? []).map(
    (e) => `${e.file}: ${e.id} (${e.reachability}, ${e.confidence} confidence)`,
  );
  if (input.packages === undefined) {
    steps.push('the image has no dpkg database: which packages are installed is unknown');
    return make(
      'under_investigation',
      undefined,
      'The image has no dpkg database, so the package cannot be found.',
      { data: anyData },
    );
  }
  const installed = facts.byName.get(finding.package) ?? [];
  if (installed.length === 0) {
    steps.push(`${finding.package} is not in the image's dpkg database (${input.packages.length} packages)`);
    return make(
      'not_affected',
      'component_not_present',
      `Package ${finding.package} is not installed in the image (its dpkg database lists ${input.packages.length} packages).`,
      { data: anyData },
    );
  }
  const pkg = installed.find((p) => finding.version === undefined || p.version === finding.version);
  const pkgText = (p: SbomPackage) =>
    `${p.name} ${p.version} ${p.architecture}${p.sliced ? ' (sliced)' : ''}`;
  if (!pkg) {
    steps.push(
      `the report names ${finding.package} ${finding.version}, the image has ${installed.map(pkgText).join(', ')}`,
    );
    return make(
      'under_investigation',
      undefined,
      `The report names ${finding.package} ${finding.version} but the image has ${installed.map((p) => p.version).join(', ')}: the report is of another image.`,
      { pkg: pkgText(installed[0]!), purl: installed[0]!.purl },
    );
  }
  const common = { pkg: pkgText(pkg), purl: pkg.purl };
  steps.push(`installed: ${pkgText(pkg)}, source ${pkg.source.name} ${pkg.source.version}`);

  const entries = (input.data.byId.get(finding.id) ?? []).filter(
    (e) => e.binaries.includes(pkg.name) || e.source === pkg.source.name,
  );
  const data = entries.map((e) => `${e.file}: ${e.id} (${e.reachability}, ${e.confidence} confidence)`);

  // 1. The library files of every entry are absent: the vulnerable code is not in the image.
  const present = entries.map((e) => ({ e, libs: facts.libraryFiles(e.libraries) }));
  if (entries.length > 0 && present.every((x) => x.libs.length === 0)) {
    const names = uniq(entries.flatMap((e) => e.libraries));
    steps.push(`none of ${names.join(', ')} is in the image`);
    return make(
      'not_affected',
      'component_not_present',
      `${pkgText(pkg)} is installed but the vulnerable library (${names.join(', ')}) is not in the image: the slicer removed it. Data: ${data.join('; ')}.`,
      { ...common, data },
    );
  }
  const libraries = uniq(present.flatMap((x) => x.libs));
  if (libraries.length > 0) steps.push(`library files present: ${libraries.join(', ')}`);

  // 2. The installed package is fixed: its changelog names the CVE, or the data's fixed version is installed.
  const log = await readChangelog(input.tree, pkg.name);
  if (log) {
    const entry = log.entries.find((x) => x.text.includes(finding.id));
    if (entry) {
      steps.push(`${log.path} names ${finding.id} in the entry of ${entry.version}`);
      return make(
        'not_affected',
        'vulnerable_code_not_present',
        `The installed ${pkgText(pkg)} has the fix: its changelog (${log.path}) names ${finding.id} in the entry of version ${entry.version}.`,
        { ...common, data, libraries },
      );
    }
    steps.push(`${log.path} does not name ${finding.id}`);
  } else steps.push(`no changelog of ${pkg.name} in the image (/usr/share/doc is sliced)`);
  for (const e of entries) {
    const fixed = input.codename ? e.fixed?.[input.codename] : undefined;
    if (fixed === undefined) continue;
    let cmp: number;
    try {
      cmp = compareVersions(pkg.source.version, fixed);
    } catch {
      continue;
    }
    if (cmp >= 0) {
      steps.push(`${e.file}: fixed in ${input.codename} ${fixed} <= installed source ${pkg.source.version}`);
      return make(
        'not_affected',
        'vulnerable_code_not_present',
        `The installed ${pkg.source.name} ${pkg.source.version} has the fix: ${input.codename} fixed ${finding.id} in ${fixed} (${e.source_ref}).`,
        { ...common, data, libraries },
      );
    }
    steps.push(
      `${e.file}: fixed in ${input.codename} ${fixed}, installed source ${pkg.source.version} is older`,
    );
  }

  if (entries.length === 0) {
    steps.push(`no vulnerable-function data for ${finding.id} and ${pkg.name} (source ${pkg.source.name})`);
    return make(
      'under_investigation',
      undefined,
      `No vulnerable-function data for ${finding.id} in ${pkg.source.name}: reachability was not analysed.`,
      { ...common, libraries },
    );
  }
  const verdicts = await Promise.all(present.map((x) => reach(facts, x.e, x.libs)));
  for (const v of verdicts) steps.push(...v.steps);
  const worst = verdicts.reduce((a, b) => (RANK[b.status] < RANK[a.status] ? b : a));
  const importers = uniq(verdicts.flatMap((v) => v.importers));
  const dlopenUsers = uniq(verdicts.flatMap((v) => v.dlopenUsers));
  const ffi = uniq(verdicts.flatMap((v) => v.ffi));
  const evidence = { ...common, data, libraries, importers, dlopenUsers, ffi };
  const fix = entries
    .map((e) => (input.codename ? e.fixed?.[input.codename] : undefined))
    .find((x) => x !== undefined);
  const action = fix
    ? `Rebuild the image with ${pkg.source.name} ${fix} or later (the ${input.codename} fix).`
    : `Rebuild the image once ${pkg.source.name} has a fix for ${finding.id}, or remove the users of the vulnerable code.`;
  return make(worst.status, worst.justification, `${worst.impact} Data: ${data.join('; ')}.`, {
    ...evidence,
    ...(worst.status === 'affected' ? { action } : {}),
  });
}

interface Reach {
  readonly status: VexStatus;
  readonly justification: VexJustification | undefined;
  readonly impact: string;
  readonly importers: string[];
  readonly dlopenUsers: string[];
  readonly ffi: string[];
  readonly steps: string[];
}

/** Step 3 and 4 for one entry whose library files `libs` are in the image. */
async function reach(facts: ImageFacts, e: VexDataEntry, libs: readonly string[]): Promise<Reach> {
  const { audit } = facts.input;
  const steps: string[] = [];
  if (libs.length === 0)
    return {
      status: 'not_affected',
      justification: 'component_not_present',
      impact: `${e.libraries.join(', ')} is not in the image.`,
      importers: [],
      dlopenUsers: [],
      ffi: [],
      steps: [`${e.id}: none of ${e.libraries.join(', ')} is in the image`],
    };
  const where = libs.join(', ');
  if (e.reachability === 'not-function-level') {
    steps.push(`${e.id}: not-function-level (${e.reasoning}): present is affected`);
    return {
      status: 'affected',
      justification: undefined,
      impact: `${where} is in the image and ${e.id} is not tied to a function a program must call (${e.reasoning}).`,
      importers: [],
      dlopenUsers: [],
      ffi: [],
      steps,
    };
  }
  const own = new Set(e.libraries);
  // The CVE's own libraries call their internals directly, invisible to (and not counted by) the import tables.
  const isOwn = (f: AuditFile) =>
    (f.soname !== null && own.has(f.soname)) || own.has(base(f.path)) || libs.includes(f.path);
  const wanted = new Set(e.functions);
  const importers: string[] = [];
  for (const f of audit.files) {
    if (isOwn(f)) continue;
    for (const i of f.imports ?? [])
      if (wanted.has(i.name)) importers.push(`${f.path}: ${i.name} (${i.library ?? 'unresolved'})`);
    for (const n of f.linkedFunctions)
      if (wanted.has(n)) importers.push(`${f.path}: ${n} (linked in statically)`);
  }
  const fns = e.functions.join(', ');
  steps.push(
    `${e.id}: ${importers.length} import(s) of ${fns} among ${audit.files.length} ELF files (the CVE's own libraries excluded)`,
  );
  if (importers.length > 0)
    return {
      status: 'affected',
      justification: undefined,
      impact: `${fns} (the entry point to ${e.id}) is imported: ${uniq(importers).join('; ')}.`,
      importers: uniq(importers),
      dlopenUsers: [],
      ffi: [],
      steps,
    };
  // Every ELF file must have been read: one that failed to parse could import the function.
  if (audit.errors.length > 0) {
    steps.push(
      `${audit.errors.length} ELF file(s) could not be read: ${audit.errors.map((x) => x.path).join(', ')}`,
    );
    return {
      status: 'under_investigation',
      justification: undefined,
      impact: `No readable ELF file imports ${fns}, but ${audit.errors.length} could not be read (${audit.errors.map((x) => x.path).join(', ')}).`,
      importers: [],
      dlopenUsers: [],
      ffi: [],
      steps,
    };
  }
  // A program that dlopens the library by name can dlsym the function: the name must not be in any dlopen user.
  const stems = uniq(e.libraries.map((l) => l.replace(/\.so(\..*)?$/, '.so')));
  const dlopenUsers: string[] = [];
  let reaching = 0;
  for (const f of facts.dlopenUsers) {
    if (isOwn(f)) continue;
    const bytes = await facts.read(f.path);
    // Each DT_NEEDED name is in .dynstr once (version needs point at the same string): occurrences beyond those are
    // other references (a dlopen argument in .rodata). Counting more than that only makes the answer more cautious.
    const named = stems.filter((s) => occurrences(bytes, s) > f.needed.filter((n) => n.includes(s)).length);
    if (named.length > 0) reaching++;
    dlopenUsers.push(
      `${f.path}: ${named.length > 0 ? `names ${named.join(', ')}` : `names none of ${stems.join(', ')}`}`,
    );
  }
  steps.push(`${e.id}: dlopen users considered: ${dlopenUsers.length > 0 ? dlopenUsers.join('; ') : 'none'}`);
  steps.push(`${e.id}: FFI modules: ${facts.ffi.length > 0 ? facts.ffi.join(', ') : 'none'}`);
  if (reaching > 0 || facts.ffi.length > 0) {
    const why = [
      ...(reaching > 0 ? [`${reaching} file(s) that call dlopen name ${stems.join(', ')}`] : []),
      ...(facts.ffi.length > 0 ? [`the image has FFI modules (${facts.ffi.join(', ')})`] : []),
    ].join(', and ');
    return {
      status: 'under_investigation',
      justification: undefined,
      impact: `No ELF file imports ${fns}, but ${why}: a path to it at run time cannot be ruled out.`,
      importers: [],
      dlopenUsers,
      ffi: [...facts.ffi],
      steps,
    };
  }
  return {
    status: 'not_affected',
    justification: 'vulnerable_code_not_in_execute_path',
    impact: `${where} is in the image but none of the image's ${audit.files.length} ELF files (its own libraries aside) imports or links ${fns} (the entry point to ${e.id}), no file that calls dlopen names ${stems.join(', ')}${dlopenUsers.length > 0 ? ` (${dlopenUsers.length} checked)` : ''}, and no FFI module is present.`,
    importers: [],
    dlopenUsers,
    ffi: [],
    steps,
  };
}
