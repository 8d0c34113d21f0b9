/**
 * `pare diff A B`: what differs between two images (config, layers, packages, files, ELF hardening), and for two
 * images whose digests differ, the first reason: the first layer whose content differs and its first tar member that
 * differs (which field), or a layer that holds the same tar compressed differently, or the first config key, or the
 * manifest key. Layers are read through the verified readers (digest, size and diff_id checked), and a layer's
 * members are compared only after it was read to the end.
 */
import { createHash } from 'node:crypto';
import { compareVersions } from '../debian/version.ts';
import { treeRootFs } from '../elf/index.ts';
import { type Content, comparePaths, type Entry, type Tree } from '../fstree/index.ts';
import type { Image } from '../oci/index.ts';
import { readTar } from '../tar/reader.ts';
import { auditTree } from './audit.ts';
import { installedPackageList, type PackageOwner } from './dpkg.ts';
import type { AuditFile } from './schema.ts';

export const DIFF_SCHEMA = 'pare.diff/v1';

/** One image as it was opened: the argument, its manifest and config digests and its root filesystem. */
export interface DiffInput {
  readonly name: string;
  readonly image: Image;
  readonly tree: Tree;
  /** The layer (digest) that last wrote each path, from imageToTree. */
  readonly origins: ReadonlyMap<string, string>;
}

/** A value that differs: `a` and `b` are JSON values, null where absent. */
export interface Change {
  readonly key: string;
  readonly a: unknown;
  readonly b: unknown;
}

export interface DiffLayer {
  readonly index: number;
  readonly a: { readonly digest: string; readonly diffId: string; readonly size: number } | null;
  readonly b: { readonly digest: string; readonly diffId: string; readonly size: number } | null;
  /** `same` (same digest), `recompressed` (same diff_id, other digest), `changed`, `added`, `removed`. */
  readonly status: 'same' | 'recompressed' | 'changed' | 'added' | 'removed';
}

export interface FileFacts {
  readonly path: string;
  readonly kind: Entry['kind'];
  readonly size: number;
  /** Permission bits, octal (`0755`). */
  readonly mode: string;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** Link target (symlinks and hardlinks), else null. */
  readonly target: string | null;
}

export interface FileChange {
  readonly path: string;
  /** Fields that differ: kind, size, mode, uid, gid, mtime, target, xattrs, content (sha256 digests). */
  readonly changes: readonly Change[];
}

export interface FirstDifference {
  /** `manifest`, `config`, `layer` or `layers` (the layer counts differ). */
  readonly where: 'manifest' | 'config' | 'layer' | 'layers';
  /** Index (1-based) of the layer, for `layer`. */
  readonly layer: number | null;
  /** The tar member path (layer) or the key (config, manifest), when one is named. */
  readonly subject: string | null;
  readonly field: string | null;
  readonly a: unknown;
  readonly b: unknown;
  /** One sentence. */
  readonly reason: string;
}

export interface ImageDiff {
  readonly schema: typeof DIFF_SCHEMA;
  readonly a: { readonly name: string; readonly digest: string; readonly config: string };
  readonly b: { readonly name: string; readonly digest: string; readonly config: string };
  /** Same manifest digest. */
  readonly identical: boolean;
  /** Null when identical. */
  readonly first: FirstDifference | null;
  readonly config: readonly Change[];
  readonly layers: readonly DiffLayer[];
  readonly packages: {
    readonly added: readonly PackageOwner[];
    readonly removed: readonly PackageOwner[];
    readonly changed: readonly {
      readonly package: string;
      readonly architecture: string | null;
      readonly a: string | null;
      readonly b: string | null;
      readonly direction: 'upgrade' | 'downgrade' | 'other';
    }[];
  };
  readonly files: {
    readonly added: readonly FileFacts[];
    readonly removed: readonly FileFacts[];
    readonly changed: readonly FileChange[];
  };
  /** ELF files in both images whose hardening facts differ. */
  readonly hardening: readonly FileChange[];
}

async function sha256(c: Content): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of c.open()) h.update(chunk);
  return `sha256:${h.digest('hex')}`;
}

async function isElf(c: Content): Promise<boolean> {
  if (c.size < 4) return false;
  const b = await c.read(0, 4);
  return b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

function facts(path: string, e: Entry): FileFacts {
  return {
    path,
    kind: e.kind,
    size: e.kind === 'file' ? e.content.size : 0,
    mode: e.mode.toString(8).padStart(4, '0'),
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    target: e.kind === 'symlink' || e.kind === 'hardlink' ? e.target : null,
  };
}

function xattrText(x: Entry['xattrs']): string | null {
  if (!x || Object.keys(x).length === 0) return null;
  return Object.keys(x)
    .sort()
    .map((k) => `${k}=${Buffer.from(x[k]!).toString('hex')}`)
    .join(',');
}

/** Flattens a config for comparison: Env by variable name, Labels/ExposedPorts/Volumes by key, the rest whole. */
function flattenConfig(raw: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'rootfs') continue; // the layers' diff_ids: compared as layers
    if (k === 'config' && v && typeof v === 'object') {
      for (const [ck, cv] of Object.entries(v as Record<string, unknown>)) {
        if (ck === 'Env' && Array.isArray(cv)) {
          for (const e of cv as string[]) {
            const i = String(e).indexOf('=');
            out.set(`config.Env.${i < 0 ? e : e.slice(0, i)}`, JSON.stringify(i < 0 ? '' : e.slice(i + 1)));
          }
        } else if (['Labels', 'ExposedPorts', 'Volumes'].includes(ck) && cv && typeof cv === 'object') {
          for (const [lk, lv] of Object.entries(cv as Record<string, unknown>))
            out.set(`config.${ck}.${lk}`, JSON.stringify(lv));
        } else out.set(`config.${ck}`, JSON.stringify(cv));
      }
    } else if (k === 'history' && Array.isArray(v)) {
      v.forEach((h, i) => {
        out.set(`history[${i}]`, JSON.stringify(h));
      });
    } else out.set(k, JSON.stringify(v));
  }
  return out;
}

/** The keys whose values differ between two flattened documents, sorted. */
function changes(a: Map<string, string>, b: Map<string, string>): Change[] {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: Change[] = [];
  for (const k of keys) {
    const x = a.get(k);
    const y = b.get(k);
    if (x === y) continue;
    out.push({
      key: k,
      a: x === undefined ? null : JSON.parse(x),
      b: y === undefined ? null : JSON.parse(y),
    });
  }
  return out;
}

/** Flattens any JSON document into `a.b[0].c` keys with JSON-text leaves. */
function flattenJson(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) flattenJson(v[i], `${prefix}[${i}]`, out);
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      flattenJson(x, prefix ? `${prefix}.${k}` : k, out);
  else out.set(prefix, JSON.stringify(v));
  return out;
}

const jsonOf = async (bytes: Promise<Uint8Array>) =>
  JSON.parse(Buffer.from(await bytes).toString('utf8')) as Record<string, unknown>;

/** One tar member as its bytes determine the layer: header fields and a content digest. */
interface MemberFacts {
  readonly path: string;
  readonly fields: Readonly<Record<string, string | number>>;
}

/** Reads a layer's members (to the end, so the verified reader checks the diff_id before anything is used). */
async function members(image: Image, index: number): Promise<MemberFacts[]> {
  const layer = (await image.layers())[index]!;
  const out: MemberFacts[] = [];
  for await (const m of readTar(layer.uncompressed())) {
    const h = m.header;
    const hash = createHash('sha256');
    for await (const c of m.body()) hash.update(c);
    out.push({
      path: h.path,
      fields: {
        type: h.type,
        mode: h.mode.toString(8).padStart(4, '0'),
        uid: h.uid,
        gid: h.gid,
        mtime: h.mtime,
        size: h.size,
        linkname: h.linkname,
        device: `${h.devmajor},${h.devminor}`,
        xattrs: xattrText(h.xattrs) ?? '',
        content: `sha256:${hash.digest('hex')}`,
      },
    });
  }
  return out;
}

/** The first tar member that differs between two layers, and which field; null when all members are the same. */
async function firstMemberDifference(
  a: Image,
  b: Image,
  index: number,
): Promise<Omit<FirstDifference, 'where' | 'layer' | 'reason'> | null> {
  const [x, y] = await Promise.all([members(a, index), members(b, index)]);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const m = x[i];
    const n = y[i];
    if (!m || !n || m.path !== n.path)
      return {
        subject: m?.path ?? n!.path,
        field: 'member',
        a: m ? `member ${i + 1}: ${m.path}` : `ends after ${x.length} members`,
        b: n ? `member ${i + 1}: ${n.path}` : `ends after ${y.length} members`,
      };
    for (const f of Object.keys(m.fields))
      if (m.fields[f] !== n.fields[f]) return { subject: m.path, field: f, a: m.fields[f], b: n.fields[f] };
  }
  return null;
}

function describe(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The first reason two images' digests differ (null when they do not). */
async function firstDifference(
  a: DiffInput,
  b: DiffInput,
  layers: readonly DiffLayer[],
  config: readonly Change[],
): Promise<FirstDifference | null> {
  if ((await a.image.digest()) === (await b.image.digest())) return null;
  // The first layer that is not the same decides, in layer order.
  const firstLayer = layers.find((l) => l.status !== 'same');
  const changed = firstLayer?.status === 'changed' ? firstLayer : undefined;
  if (changed) {
    const m = await firstMemberDifference(a.image, b.image, changed.index - 1);
    const head = `layer ${changed.index} differs (diff_id ${changed.a!.diffId} vs ${changed.b!.diffId})`;
    if (!m)
      return {
        where: 'layer',
        layer: changed.index,
        subject: null,
        field: null,
        a: changed.a!.diffId,
        b: changed.b!.diffId,
        reason: `${head}: every member has the same header fields and content, so the tar encoding differs (header format, PAX records, padding or end blocks)`,
      };
    return {
      where: 'layer',
      layer: changed.index,
      ...m,
      reason:
        m.field === 'member'
          ? `${head}: the members differ at ${describe(m.a)} vs ${describe(m.b)}`
          : `${head}: first at ${m.subject}, whose ${m.field} is ${describe(m.a)} vs ${describe(m.b)}`,
    };
  }
  const count = firstLayer?.status === 'added' || firstLayer?.status === 'removed' ? firstLayer : undefined;
  if (count)
    return {
      where: 'layers',
      layer: count.index,
      subject: null,
      field: 'count',
      a: layers.filter((l) => l.a).length,
      b: layers.filter((l) => l.b).length,
      reason: `the images have ${layers.filter((l) => l.a).length} and ${layers.filter((l) => l.b).length} layers; the first ${count.index - 1} are the same`,
    };
  const re = firstLayer?.status === 'recompressed' ? firstLayer : undefined;
  if (re)
    return {
      where: 'layer',
      layer: re.index,
      subject: null,
      field: 'digest',
      a: re.a!.digest,
      b: re.b!.digest,
      reason: `layer ${re.index} holds the same tar (diff_id ${re.a!.diffId}) compressed differently: ${re.a!.size} vs ${re.b!.size} bytes stored (compressor, level or media type)`,
    };
  const c = config[0];
  if (c)
    return {
      where: 'config',
      layer: null,
      subject: c.key,
      field: c.key,
      a: c.a,
      b: c.b,
      reason: `the layers are the same; the config differs first at ${c.key}: ${describe(c.a)} vs ${describe(c.b)}`,
    };
  const [ma, mb] = await Promise.all([jsonOf(a.image.rawManifest()), jsonOf(b.image.rawManifest())]);
  const m = changes(flattenJson(ma), flattenJson(mb));
  const first = m[0];
  return {
    where: 'manifest',
    layer: null,
    subject: first?.key ?? null,
    field: first?.key ?? null,
    a: first?.a ?? null,
    b: first?.b ?? null,
    reason: first
      ? `layers and config are the same; the manifest differs at ${first.key}: ${describe(first.a)} vs ${describe(first.b)}`
      : 'layers, config and manifest fields are the same; the manifest bytes differ (key order or whitespace)',
  };
}

const HARDENING_FIELDS = [
  'relro',
  'bindNow',
  'canary',
  'nx',
  'pie',
  'linkage',
  'rpath',
  'runpath',
  'stripped',
  'fortify',
  'ibt',
  'shstk',
  'bti',
  'pac',
] as const;

function hardeningChanges(x: AuditFile, y: AuditFile): Change[] {
  const out: Change[] = [];
  for (const k of HARDENING_FIELDS) {
    const a = x.hardening[k].value;
    const b = y.hardening[k].value;
    if (a !== b) out.push({ key: k, a, b });
  }
  const fa = x.hardening.fortify;
  const fb = y.hardening.fortify;
  if (fa.fortified !== fb.fortified) out.push({ key: 'fortified', a: fa.fortified, b: fb.fortified });
  return out;
}

/** Compares two opened images. */
export async function diffImages(a: DiffInput, b: DiffInput): Promise<ImageDiff> {
  // Layers, pairwise by position.
  const [la, lb] = await Promise.all([a.image.layers(), b.image.layers()]);
  const layers: DiffLayer[] = [];
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    const side = async (l: (typeof la)[number] | undefined) =>
      l ? { digest: await l.digest(), diffId: await l.diffId(), size: await l.size() } : null;
    const x = await side(la[i]);
    const y = await side(lb[i]);
    const status = !x
      ? 'added'
      : !y
        ? 'removed'
        : x.digest === y.digest
          ? 'same'
          : x.diffId === y.diffId
            ? 'recompressed'
            : 'changed';
    layers.push({ index: i + 1, a: x, b: y, status });
  }
  const [ca, cb] = await Promise.all([jsonOf(a.image.rawConfig()), jsonOf(b.image.rawConfig())]);
  const config = changes(flattenConfig(ca), flattenConfig(cb));

  // Packages, by name and architecture.
  const [pa, pb] = await Promise.all([
    installedPackageList(treeRootFs(a.tree)),
    installedPackageList(treeRootFs(b.tree)),
  ]);
  const id = (p: PackageOwner) => `${p.package}:${p.architecture ?? ''}`;
  const mb = new Map(pb.map((p) => [id(p), p]));
  const ma = new Map(pa.map((p) => [id(p), p]));
  const changedPackages: ImageDiff['packages']['changed'][number][] = [];
  for (const p of pa) {
    const q = mb.get(id(p));
    if (!q || q.version === p.version) continue;
    let direction: 'upgrade' | 'downgrade' | 'other' = 'other';
    try {
      if (p.version && q.version)
        direction = compareVersions(p.version, q.version) < 0 ? 'upgrade' : 'downgrade';
    } catch {
      /* an unparsable version is reported as changed, without a direction */
    }
    changedPackages.push({
      package: p.package,
      architecture: p.architecture ?? null,
      a: p.version ?? null,
      b: q.version ?? null,
      direction,
    });
  }

  // Files: every path of either root, in path order.
  const added: FileFacts[] = [];
  const removed: FileFacts[] = [];
  const changedFiles: FileChange[] = [];
  const contentChanged: string[] = [];
  const paths = [...new Set([...a.tree.paths(), ...b.tree.paths()])].sort(comparePaths);
  for (const p of paths) {
    const x = a.tree.get(p);
    const y = b.tree.get(p);
    if (!x) {
      added.push(facts(p, y!));
      continue;
    }
    if (!y) {
      removed.push(facts(p, x));
      continue;
    }
    const fx = facts(p, x);
    const fy = facts(p, y);
    const c: Change[] = [];
    for (const k of ['kind', 'size', 'mode', 'uid', 'gid', 'mtime', 'target'] as const)
      if (fx[k] !== fy[k]) c.push({ key: k, a: fx[k], b: fy[k] });
    const xa = xattrText(x.xattrs);
    const xb = xattrText(y.xattrs);
    if (xa !== xb) c.push({ key: 'xattrs', a: xa, b: xb });
    // The same layer wrote both: the same bytes. Otherwise equal sizes are hashed; other sizes differ anyway.
    if (
      x.kind === 'file' &&
      y.kind === 'file' &&
      x.content.size === y.content.size &&
      a.origins.get(p) !== b.origins.get(p)
    ) {
      const [ha, hb] = await Promise.all([sha256(x.content), sha256(y.content)]);
      if (ha !== hb) c.push({ key: 'content', a: ha, b: hb });
    }
    if (c.length === 0) continue;
    changedFiles.push({ path: p, changes: c });
    if (
      x.kind === 'file' &&
      y.kind === 'file' &&
      c.some((k) => k.key === 'size' || k.key === 'content') &&
      (await isElf(x.content)) &&
      (await isElf(y.content))
    )
      contentChanged.push(p);
  }

  // Hardening of the ELF files whose bytes changed (a file's hardening is a property of its bytes).
  const hardening: FileChange[] = [];
  if (contentChanged.length > 0) {
    const opts = { paths: contentChanged, closure: false, imports: false, packages: false, scanCode: false };
    const [ra, rb] = await Promise.all([
      auditTree(a.tree, { ...opts, name: a.name }),
      auditTree(b.tree, { ...opts, name: b.name }),
    ]);
    const byPath = new Map(rb.files.map((f) => [f.path, f]));
    for (const f of ra.files) {
      const g = byPath.get(f.path);
      if (!g) continue;
      const c = hardeningChanges(f, g);
      if (c.length > 0) hardening.push({ path: f.path, changes: c });
    }
  }

  return {
    schema: DIFF_SCHEMA,
    a: { name: a.name, digest: await a.image.digest(), config: await a.image.configDigest() },
    b: { name: b.name, digest: await b.image.digest(), config: await b.image.configDigest() },
    identical: (await a.image.digest()) === (await b.image.digest()),
    first: await firstDifference(a, b, layers, config),
    config,
    layers,
    packages: {
      added: pb.filter((p) => !ma.has(id(p))),
      removed: pa.filter((p) => !mb.has(id(p))),
      changed: changedPackages,
    },
    files: { added, removed, changed: changedFiles },
    hardening,
  };
}

const show = (v: unknown) => (v === null ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));
const fileLine = (f: FileFacts) =>
  `${f.path} (${f.kind}${f.kind === 'file' ? `, ${f.size} B` : ''}, ${f.mode}, ${f.uid}:${f.gid}${f.target !== null ? ` -> ${f.target}` : ''})`;

/** The diff as text, ending in a newline. */
export function renderDiff(d: ImageDiff): string {
  const lines = [`A ${d.a.name} ${d.a.digest}`, `B ${d.b.name} ${d.b.digest}`];
  if (d.identical) return `${lines.join('\n')}\nidentical: same manifest digest\n`;
  lines.push(`FIRST DIFFERENCE ${d.first!.reason}`);
  if (d.config.length > 0) {
    lines.push('', 'CONFIG');
    for (const c of d.config) lines.push(`  ~ ${c.key}: ${show(c.a)} -> ${show(c.b)}`);
  }
  lines.push('', 'LAYERS');
  for (const l of d.layers) {
    const mark = { same: '=', recompressed: '≈', changed: '~', added: '+', removed: '-' }[l.status];
    const what =
      l.status === 'same'
        ? l.a!.digest
        : l.status === 'added'
          ? l.b!.digest
          : l.status === 'removed'
            ? l.a!.digest
            : `${l.a!.digest} -> ${l.b!.digest}${l.status === 'recompressed' ? ' (same diff_id)' : ''}`;
    lines.push(`  ${mark} ${l.index} ${what}`);
  }
  const p = d.packages;
  if (p.added.length + p.removed.length + p.changed.length > 0) {
    lines.push('', 'PACKAGES');
    for (const x of p.added) lines.push(`  + ${x.package} ${x.version ?? ''}`.trimEnd());
    for (const x of p.removed) lines.push(`  - ${x.package} ${x.version ?? ''}`.trimEnd());
    for (const x of p.changed)
      lines.push(
        `  ~ ${x.package} ${show(x.a)} -> ${show(x.b)}${x.direction === 'other' ? '' : ` (${x.direction})`}`,
      );
  }
  const f = d.files;
  if (f.added.length + f.removed.length + f.changed.length > 0) {
    lines.push('', 'FILES');
    for (const x of f.added) lines.push(`  + ${fileLine(x)}`);
    for (const x of f.removed) lines.push(`  - ${fileLine(x)}`);
    for (const x of f.changed)
      lines.push(
        `  ~ ${x.path}: ${x.changes.map((c) => `${c.key} ${show(c.a)} -> ${show(c.b)}`).join(', ')}`,
      );
  }
  if (d.hardening.length > 0) {
    lines.push('', 'HARDENING');
    for (const x of d.hardening)
      lines.push(
        `  ~ ${x.path}: ${x.changes.map((c) => `${c.key} ${show(c.a)} -> ${show(c.b)}`).join(', ')}`,
      );
  }
  lines.push(
    '',
    `${d.config.length} config, ${d.layers.filter((l) => l.status !== 'same').length} layer, ${p.added.length + p.removed.length + p.changed.length} package, ${f.added.length + f.removed.length + f.changed.length} file and ${d.hardening.length} hardening differences`,
  );
  return `${lines.join('\n')}\n`;
}
