import { createHash } from 'node:crypto';
import { groupFile, NONROOT_HOME, NONROOT_ID, nsswitchFile, passwdFile } from '../accounts/index.ts';
import { DebianError } from '../errors.ts';
import {
  bufferContent,
  dirEntry,
  type Entry,
  fileEntry,
  symlinkEntry,
  type Tree,
  TreeBuilder,
} from '../fstree/index.ts';
import { CA_CONF_PATH, caCertificatesConf, caTrustEntries } from './cacerts.ts';
import { Paragraph } from './control.ts';
import type { DebPackage } from './deb.ts';
import { parseRelations } from './relation.ts';
import { mergeUsr, sameEntry, type UsrAlias, usrMergedDirs } from './usrmerge.ts';
import { satisfiesVersion } from './version.ts';

/**
 * Root filesystem assembly without maintainer scripts: a pure function from unpacked .debs to one FsTree. Nothing
 * from the image is executed; what the scripts of a minimal set would have done is computed instead:
 *
 * - merged /usr (usrmerge.ts) and the top-level `usr/…` symlinks;
 * - package trees merged with dpkg's rules: directories shared, identical files allowed, a file differing from another
 *   package's is an error naming both unless one package `Replaces` the other (then it wins, as dpkg lets it);
 * - dpkg metadata that scanners (syft, trivy, grype) read, distroless style: `/var/lib/dpkg/status.d/<pkg>` (the
 *   control paragraph with `Status: install ok installed`, and `Conffiles` when any) and `<pkg>.md5sums`;
 * - /etc/passwd, /etc/group (src/accounts' defaults: root, nonroot 65532, nobody 65534), /etc/nsswitch.conf, /root, /home/nonroot (0700,
 *   65532:65532), /tmp (1777);
 * - the CA bundle as ca-certificates' postinst + update-ca-certificates would make it (cacerts.ts);
 * - /etc/os-release, /etc/debian_version and tzdata zone files come as base-files and tzdata ship them.
 *
 * No /etc/ld.so.cache is written: Debian's ld.so searches /lib/<triplet>, /usr/lib/<triplet>, /lib and /usr/lib
 * without a cache (`ld.so --help`, "System search path"; see test/debian/assemble-ldso.test.ts). Library
 * directories added by /etc/ld.so.conf.d snippets are reported in `notes`, since only a cache would make them found.
 *
 * Deterministic: packages are taken in name order, every mtime is set to `epoch`.
 */

export interface AssembleOptions {
  /** Debian architecture of the image (decides /lib64 and friends). */
  readonly architecture: string;
  /** SOURCE_DATE_EPOCH: every entry's mtime, in seconds. Default 0. */
  readonly epoch?: number;
}

export interface Assembled {
  readonly tree: Tree;
  /** Paths each package shipped under /bin, /lib, … and where they are now, by package name. */
  readonly aliases: ReadonlyMap<string, readonly UsrAlias[]>;
  /** Which package(s) own each non-directory path (canonical). */
  readonly owners: ReadonlyMap<string, readonly string[]>;
  /** Things a reader should know (e.g. library directories only an ld.so.cache would make visible). */
  readonly notes: readonly string[];
}

const STATUS_DIR = '/var/lib/dpkg/status.d';

const TRIPLETS: Record<string, string> = {
  amd64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  armhf: 'arm-linux-gnueabihf',
  armel: 'arm-linux-gnueabi',
  i386: 'i386-linux-gnu',
  ppc64el: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
  riscv64: 'riscv64-linux-gnu',
  mips64el: 'mips64el-linux-gnuabi64',
};

function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

function replaces(a: DebPackage, b: DebPackage): boolean {
  const text = a.control.get('Replaces');
  if (!text) return false;
  const name = b.control.get('Package');
  const version = b.control.get('Version')!;
  return parseRelations(text, { field: 'Replaces', package: a.control.get('Package') })
    .flat()
    .some(
      (r) =>
        r.name === name &&
        (!r.constraint || satisfiesVersion(version, r.constraint.op, r.constraint.version)),
    );
}

/** Returns the dpkg status stanza for a package, distroless style. */
export async function statusStanza(deb: DebPackage, tree: Tree): Promise<string> {
  const fields: [string, string][] = [];
  for (const [k, v] of deb.control.entries()) {
    fields.push([k, v]);
    if (k.toLowerCase() === 'package') fields.push(['Status', 'install ok installed']);
  }
  if (deb.conffiles.length > 0) {
    const lines: string[] = [];
    for (const c of deb.conffiles) {
      const f = tree.file(c);
      lines.push(`${c} ${f ? md5(await f.content.bytes()) : 'newconffile'}`);
    }
    fields.push(['Conffiles', `\n${lines.join('\n')}`]);
  }
  return new Paragraph(fields).format();
}

/** Returns an md5sums file (`<md5>  <path without leading />`), in the order the package shipped it. */
function md5sumsFile(deb: DebPackage): string {
  return [...deb.md5sums].map(([p, sum]) => `${sum}  ${p.slice(1)}\n`).join('');
}

/**
 * Returns the root filesystem of `packages`. Throws DEBIAN_ASSEMBLE_CONFLICT naming both packages and the path when
 * two packages ship different things at one path (and neither Replaces the other), or one package ships a path
 * below another's non-directory.
 */
export async function assembleRootfs(
  packages: readonly DebPackage[],
  options: AssembleOptions,
): Promise<Assembled> {
  const epoch = options.epoch ?? 0;
  const sorted = [...packages].sort((a, b) => {
    const x = `${a.control.get('Package')}:${a.control.get('Architecture')}`;
    const y = `${b.control.get('Package')}:${b.control.get('Architecture')}`;
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const b = new TreeBuilder({ mtime: epoch });
  const owner = new Map<string, DebPackage>();
  const owners = new Map<string, string[]>();
  const aliases = new Map<string, UsrAlias[]>();
  const notes: string[] = [];
  const nameOf = (d: DebPackage) => d.control.get('Package')!;

  // The merged-/usr links come first, as debootstrap makes them before unpacking anything.
  for (const d of usrMergedDirs(options.architecture)) {
    b.mkdirp(`/usr/${d}`);
    b.put(`/${d}`, symlinkEntry(`usr/${d}`));
  }

  const merged: { deb: DebPackage; tree: Tree }[] = [];
  for (const deb of sorted) {
    const { tree, aliases: a } = await mergeUsr(deb.tree, nameOf(deb));
    if (a.length > 0) aliases.set(nameOf(deb), a);
    merged.push({ deb, tree });
  }
  // Hardlinks go last so their targets are in place whatever the package order.
  for (const pass of ['other', 'hardlink'] as const) {
    for (const { deb, tree } of merged) {
      const pkg = nameOf(deb);
      for (const [p, e] of tree) {
        if (p === '/' || (pass === 'hardlink') !== (e.kind === 'hardlink')) continue;
        const old = b.get(p);
        if (old === undefined) {
          putOrExplain(b, p, e, pkg, owner);
        } else if (old.kind === 'dir' && e.kind === 'dir') {
          continue;
        } else {
          const prev = owner.get(p);
          if (!(await sameEntry(old, e))) {
            if (prev && replaces(deb, prev)) b.put(p, e);
            else if (prev && replaces(prev, deb)) continue;
            else {
              throw new DebianError(
                'DEBIAN_ASSEMBLE_CONFLICT',
                `cannot assemble the root filesystem: packages ${JSON.stringify(prev ? nameOf(prev) : '(pare)')} and ${JSON.stringify(pkg)} both ship ${JSON.stringify(p)} (${old.kind} and ${e.kind}) and differ; drop one of them or pick versions that agree`,
                { package: pkg, path: p },
              );
            }
          }
        }
        if (e.kind !== 'dir') {
          owner.set(p, deb);
          const list = owners.get(p);
          if (list) {
            if (!list.includes(pkg)) list.push(pkg);
          } else owners.set(p, [pkg]);
        }
      }
    }
  }

  // Accounts and the directories a minimal root needs, unless a package shipped them.
  const ensureFile = (path: string, text: string, mode = 0o644) => {
    if (!b.has(path)) b.put(path, fileEntry(bufferContent(text), { mode }));
    else notes.push(`kept ${path} as shipped by ${owner.get(path) ? nameOf(owner.get(path)!) : 'a package'}`);
  };
  ensureFile('/etc/passwd', passwdFile());
  ensureFile('/etc/group', groupFile());
  ensureFile('/etc/nsswitch.conf', nsswitchFile());
  b.mkdirp('/etc');
  if (!b.has('/root')) b.put('/root', dirEntry({ mode: 0o700 }));
  b.mkdirp('/home');
  b.put(NONROOT_HOME, dirEntry({ mode: 0o700, uid: NONROOT_ID, gid: NONROOT_ID }));
  b.put('/tmp', dirEntry({ mode: 0o1777 }));

  // dpkg metadata, distroless style (one stanza per package; scanners read status.d).
  let snapshot = b.build();
  const seen = new Map<string, number>();
  for (const deb of sorted) seen.set(nameOf(deb), (seen.get(nameOf(deb)) ?? 0) + 1);
  for (const deb of sorted) {
    const name = nameOf(deb);
    const file = (seen.get(name) ?? 0) > 1 ? `${name}:${deb.control.get('Architecture')}` : name;
    b.put(`${STATUS_DIR}/${file}`, fileEntry(bufferContent(await statusStanza(deb, snapshot))));
    if (deb.md5sums.size > 0)
      b.put(`${STATUS_DIR}/${file}.md5sums`, fileEntry(bufferContent(md5sumsFile(deb))));
  }

  // CA trust store, as ca-certificates' postinst + update-ca-certificates would leave it.
  snapshot = b.build();
  if (sorted.some((d) => nameOf(d) === 'ca-certificates')) {
    const confFile = snapshot.file(CA_CONF_PATH);
    const conf = confFile
      ? new TextDecoder().decode(await confFile.content.bytes())
      : caCertificatesConf(snapshot);
    if (!confFile) b.put(CA_CONF_PATH, fileEntry(bufferContent(conf)));
    for (const [p, e] of await caTrustEntries(snapshot, conf, epoch)) b.put(p, e);
  }

  snapshot = b.build();
  notes.push(...(await ldSoConfNotes(snapshot, options.architecture)));
  const tree = snapshot.map((_p, e) => (e.mtime === epoch ? e : { ...e, mtime: epoch }));
  return { tree, aliases, owners, notes };
}

function putOrExplain(
  b: TreeBuilder,
  p: string,
  e: Entry,
  pkg: string,
  owner: Map<string, DebPackage>,
): void {
  try {
    b.put(p, e);
  } catch (err) {
    let q = p;
    let blocker: string | undefined;
    while (q.lastIndexOf('/') > 0) {
      q = q.slice(0, q.lastIndexOf('/'));
      const o = b.get(q);
      if (o && o.kind !== 'dir') {
        blocker = `${q} (${o.kind}${owner.get(q) ? ` from ${JSON.stringify(owner.get(q)!.control.get('Package'))}` : ''})`;
        break;
      }
    }
    throw new DebianError(
      'DEBIAN_ASSEMBLE_CONFLICT',
      `cannot assemble the root filesystem: package ${JSON.stringify(pkg)} ships ${JSON.stringify(p)}${blocker ? ` below ${blocker}` : ''}: ${(err as Error).message}`,
      { package: pkg, path: p, cause: err },
    );
  }
}

/**
 * Returns a note for each directory named in /etc/ld.so.conf(.d) that holds shared libraries but is not in ld.so's
 * built-in search path for `arch`: without an ld.so.cache the loader will not look there.
 */
async function ldSoConfNotes(tree: Tree, arch: string): Promise<string[]> {
  const triplet = TRIPLETS[arch];
  const builtin = new Set([
    '/lib',
    '/usr/lib',
    ...(triplet ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : []),
  ]);
  const confs = ['/etc/ld.so.conf', ...tree.children('/etc/ld.so.conf.d').filter((p) => p.endsWith('.conf'))];
  const out: string[] = [];
  for (const c of confs) {
    const f = tree.file(c);
    if (!f) continue;
    for (const raw of new TextDecoder().decode(await f.content.bytes()).split('\n')) {
      const dir = raw.replace(/#.*/, '').trim();
      if (dir === '' || dir.startsWith('include') || builtin.has(dir)) continue;
      const real = tree.resolve(dir).path;
      if (builtin.has(real)) continue;
      const libs = tree.children(real).filter((p) => /\.so(\.|$)/.test(p));
      if (libs.length > 0)
        out.push(
          `${c} adds ${dir} (${libs.length} libraries), which ld.so only finds through an ld.so.cache; pare writes none`,
        );
    }
  }
  return out;
}
