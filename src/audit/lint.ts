import picomatch from 'picomatch';
import { DEFAULT_PATH } from '../defaults.ts';
import { UsageError } from '../errors.ts';
import { baseName, comparePaths, type Entry, parentPath, type Tree } from '../fstree/index.ts';
import type { LintReport } from './schema.ts';

/**
 * Image lint: dockle's image checks where an image shows them (CIS-DI-*, DKL-DI-*) and pare's own (PARE-*), over an
 * image's root filesystem and its run config. Each rule has a stable id, a short name (used by --accept, the ignore
 * file and policies), a severity and a fix hint; each finding carries its evidence (path, the layer that wrote it,
 * config key). See src/audit/README.md for the table.
 */

export type Severity = 'fatal' | 'warn' | 'info';

export interface LintRule {
  readonly id: string;
  readonly name: string;
  readonly severity: Severity;
  readonly title: string;
  readonly fix: string;
}

export interface LintEvidence {
  /** Path inside the image. */
  readonly path?: string;
  /** Digest of the layer that last wrote `path`. */
  readonly layer?: string;
  /** Config key, e.g. `config.User`, `config.Env[2]`, `config.Labels.token`. */
  readonly key?: string;
  /** What was seen (never a secret's value: secrets are named, not shown). */
  readonly detail?: string;
}

export interface LintFinding {
  readonly id: string;
  readonly name: string;
  readonly severity: Severity;
  readonly message: string;
  readonly fix: string;
  readonly evidence: LintEvidence;
  /** True when --accept or the ignore file accepts it (kept in the report, not counted against the image). */
  readonly accepted: boolean;
}

/** The rules, in report order. Ids and names are stable: new rules get new ids. */
export const LINT_RULES: readonly LintRule[] = [
  {
    id: 'CIS-DI-0001',
    name: 'root-user',
    severity: 'warn',
    title: 'the image runs as root',
    fix: 'set image.user to a dedicated non-root account (e.g. 65532:65532)',
  },
  {
    id: 'CIS-DI-0005',
    name: 'unsigned',
    severity: 'info',
    title: 'no signature stored with the image',
    fix: 'sign the image where it is stored (pare sign IMAGE --key cosign.key, or cosign sign) and verify it on pull (pare verify)',
  },
  {
    id: 'CIS-DI-0006',
    name: 'no-healthcheck',
    severity: 'info',
    title: 'no HEALTHCHECK in the config',
    fix: 'add a health check where the runtime uses one (Docker); OCI runtimes ignore it',
  },
  {
    id: 'CIS-DI-0008',
    name: 'setuid',
    severity: 'warn',
    title: 'setuid or setgid file',
    fix: 'remove the file or its setuid/setgid bit (chmod u-s,g-s); containers should not gain privileges',
  },
  {
    id: 'CIS-DI-0010',
    name: 'secret-env',
    severity: 'fatal',
    title: 'secret in an environment variable',
    fix: 'pass secrets at run time (pare run --secret, a mounted file), never in the image config',
  },
  {
    id: 'CIS-DI-0010',
    name: 'secret-label',
    severity: 'fatal',
    title: 'secret in a label',
    fix: 'remove the label; labels are public metadata',
  },
  {
    id: 'CIS-DI-0010',
    name: 'secret-file',
    severity: 'fatal',
    title: 'secret in a file (private key, cloud credential or token)',
    fix: 'remove the file from the image and mount it at run time; rotate the secret: every layer is public',
  },
  {
    id: 'DKL-DI-0001',
    name: 'sudo',
    severity: 'fatal',
    title: 'sudo is installed',
    fix: 'drop sudo; run the process as the user it needs',
  },
  {
    id: 'DKL-DI-0005',
    name: 'package-cache',
    severity: 'warn',
    title: 'package-manager cache left in the image',
    fix: 'clear the cache in the layer that fills it (apt lists, .deb archives, apk/pip caches)',
  },
  {
    id: 'DKL-DI-0006',
    name: 'latest-tag',
    severity: 'warn',
    title: 'image referenced by the `latest` tag (or no tag)',
    fix: 'reference the image by a version tag or a digest',
  },
  {
    id: 'PARE-F001',
    name: 'world-writable',
    severity: 'warn',
    title: 'world-writable file or directory without the sticky bit',
    fix: 'chmod o-w (or +t for a shared directory such as /tmp)',
  },
  {
    id: 'PARE-F002',
    name: 'unknown-owner',
    severity: 'warn',
    title: 'file owned by a uid or gid that /etc/passwd or /etc/group does not name',
    fix: 'chown to a known account, or add the account to /etc/passwd and /etc/group',
  },
  {
    id: 'PARE-F003',
    name: 'path-writable',
    severity: 'warn',
    title: 'a $PATH directory is writable by a non-root user',
    fix: 'make $PATH directories root-owned and not group/other writable (chmod go-w)',
  },
  {
    id: 'PARE-F004',
    name: 'file-capabilities',
    severity: 'warn',
    title: 'file capabilities (security.capability xattr)',
    fix: 'remove the capability (setcap -r) and grant it at run time if it is really needed',
  },
  {
    id: 'PARE-R001',
    name: 'mtime-not-epoch',
    severity: 'info',
    title: 'mtimes other than the build date',
    fix: 'build with SOURCE_DATE_EPOCH and clamp every mtime to it (pare build does; BuildKit: rewrite-timestamp=true)',
  },
  {
    id: 'PARE-B001',
    name: 'shell-present',
    severity: 'warn',
    title: 'a shell is present',
    fix: 'build without shells (pare build: shell: false, the default) unless the entrypoint is a shell script',
  },
  {
    id: 'PARE-B002',
    name: 'package-manager-present',
    severity: 'warn',
    title: 'a package manager is present',
    fix: 'leave package managers out of run-time images',
  },
  {
    id: 'PARE-B003',
    name: 'compiler-present',
    severity: 'warn',
    title: 'a compiler, assembler or linker is present',
    fix: 'build in a separate stage; ship only the output',
  },
  {
    id: 'PARE-B004',
    name: 'debugger-present',
    severity: 'warn',
    title: 'a debugger or tracer is present',
    fix: 'leave debuggers out of run-time images (attach one from the host when needed)',
  },
  {
    id: 'PARE-B005',
    name: 'network-tool-present',
    severity: 'warn',
    title: 'a network tool (downloader, netcat, ssh) is present',
    fix: 'leave network tools out of run-time images: they are what an intruder fetches a payload with',
  },
  {
    id: 'PARE-U001',
    name: 'user-missing',
    severity: 'warn',
    title: 'no USER in the config (runs as root)',
    fix: 'set image.user (e.g. 65532:65532)',
  },
  {
    id: 'PARE-U002',
    name: 'user-nobody',
    severity: 'warn',
    title: 'USER nobody: an account shared with other services',
    fix: 'use a dedicated account (e.g. 65532:65532 nonroot)',
  },
];

const BY_NAME = new Map(LINT_RULES.map((r) => [r.name, r]));
const RULE_KEYS = new Set(LINT_RULES.flatMap((r) => [r.id, r.name]));

/** The run config fields lint reads (RunConfig plus Docker's Healthcheck). */
export interface LintConfig {
  readonly User?: string;
  readonly Env?: readonly string[];
  readonly Labels?: Readonly<Record<string, string>>;
  readonly Healthcheck?: unknown;
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
}

export interface LintInput {
  readonly tree: Tree;
  readonly config: LintConfig | undefined;
  /** Layer digest that last wrote each path (imageToTree's origins). */
  readonly origins?: ReadonlyMap<string, string>;
  /** The tag the image was referenced by: undefined for a digest or when unknown, '' for a reference without one. */
  readonly tag?: string;
  /**
   * Whether a signature was found where the image is stored (cosign v3 bundle referrer or v2 `.sig` tag), and where
   * it was looked for; undefined when not looked up (the `unsigned` rule is then not evaluated).
   */
  readonly signature?: { readonly signed: boolean; readonly detail: string };
  /**
   * The image's `created` time in seconds (what SOURCE_DATE_EPOCH sets): the mtime a reproducible build gives every
   * entry. Undefined when not known (the `mtime-not-epoch` rule is then not evaluated).
   */
  readonly created?: number;
}

/** An accepted finding: a rule (id or short name) and, optionally, a path glob. */
export interface Acceptance {
  readonly rule: string;
  readonly path?: string;
  /** Where it was written (`--accept` or `FILE:LINE`), for messages. */
  readonly source: string;
}

/** Parses `RULE[:PATH]`; throws UsageError naming `source` for an unknown rule or a relative path. */
export function parseAcceptance(spec: string, source: string): Acceptance {
  const i = spec.indexOf(':');
  const rule = (i < 0 ? spec : spec.slice(0, i)).trim();
  const path = i < 0 ? undefined : spec.slice(i + 1).trim();
  if (!RULE_KEYS.has(rule))
    throw new UsageError(
      'USAGE',
      `${source}: unknown lint rule ${JSON.stringify(rule)} (one of: ${[...BY_NAME.keys()].join(', ')}, or a rule id)`,
    );
  if (path !== undefined && !path.startsWith('/'))
    throw new UsageError(
      'USAGE',
      `${source}: path ${JSON.stringify(path)} must be absolute (a path in the image)`,
    );
  return { rule, ...(path ? { path } : {}), source };
}

/** Parses an ignore file (`.pareignore`): one `RULE[:PATH]` per line, `#` comments and blank lines skipped. */
export function parseIgnoreFile(text: string, file: string): Acceptance[] {
  const out: Acceptance[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const col = raw.indexOf(line) + 1;
    out.push(parseAcceptance(line, `${file}:${n + 1}:${col}`));
  }
  return out;
}

function acceptedBy(accepts: readonly Acceptance[]): (f: Omit<LintFinding, 'accepted'>) => boolean {
  const compiled = accepts.map((a) => ({
    rule: a.rule,
    match: a.path === undefined ? undefined : picomatch(a.path, { dot: true }),
  }));
  return (f) =>
    compiled.some(
      (a) =>
        (a.rule === f.id || a.rule === f.name) &&
        (a.match === undefined || (f.evidence.path !== undefined && a.match(f.evidence.path))),
    );
}

// --- what the binary rules look for (base names in a bin/sbin directory) ---
const SHELLS = new Set([
  'sh',
  'bash',
  'rbash',
  'dash',
  'ash',
  'zsh',
  'ksh',
  'mksh',
  'csh',
  'tcsh',
  'fish',
  'busybox',
]);
const PACKAGE_MANAGERS = new Set([
  'apt',
  'apt-get',
  'aptitude',
  'dpkg',
  'apk',
  'yum',
  'dnf',
  'microdnf',
  'rpm',
  'zypper',
  'pacman',
  'pip',
  'pip3',
  'npm',
  'gem',
]);
const COMPILER =
  /^(?:[a-z0-9_]+-linux-gnu[a-z]*-)?(?:gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|tcc|as|ld|ld\.bfd|ld\.gold|rustc|javac)(?:-[0-9.]+)?$/;
const DEBUGGERS = new Set(['gdb', 'gdbserver', 'lldb', 'strace', 'ltrace', 'perf', 'valgrind']);
const NETWORK_TOOLS = new Set([
  'curl',
  'wget',
  'nc',
  'netcat',
  'ncat',
  'socat',
  'ssh',
  'scp',
  'sftp',
  'telnet',
  'ftp',
  'tftp',
  'nmap',
]);

/** Which binary rule a base name falls under, if any. */
export function binaryRule(name: string): string | undefined {
  if (SHELLS.has(name)) return 'shell-present';
  if (PACKAGE_MANAGERS.has(name)) return 'package-manager-present';
  if (COMPILER.test(name)) return 'compiler-present';
  if (DEBUGGERS.has(name)) return 'debugger-present';
  if (NETWORK_TOOLS.has(name)) return 'network-tool-present';
  return undefined;
}

/** True for a directory programs are looked up in: its base name is `bin` or `sbin`. */
function inBinDir(path: string): boolean {
  const b = baseName(parentPath(path));
  return b === 'bin' || b === 'sbin';
}

/**
 * The paths of programs in the tree whose base name a binary rule names, with that rule: regular files or hardlinks
 * with an execute bit, and symlinks that resolve to one, in a bin/sbin directory.
 */
export function namedPrograms(tree: Tree): { path: string; rule: string }[] {
  const out: { path: string; rule: string }[] = [];
  for (const path of tree.paths()) {
    if (!inBinDir(path)) continue;
    const rule = binaryRule(baseName(path));
    if (!rule) continue;
    if (isExecutable(tree, path)) out.push({ path, rule });
  }
  return out;
}

/** True when `path` is (or resolves to) a regular file with an execute bit. */
export function isExecutable(tree: Tree, path: string): boolean {
  let e: Entry | undefined = tree.get(path);
  if (e?.kind === 'symlink') e = tree.resolve(path, { follow: true }).entry;
  if (e?.kind === 'hardlink') e = tree.get(e.target);
  return e?.kind === 'file' && (e.mode & 0o111) !== 0;
}

// --- secrets ---
const SECRET_KEY =
  /(?:^|_)(?:PASSWORD|PASSWD|PASS|SECRET|SECRET_KEY|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)(?:$|_)/i;
const SECRET_KEY_NOT = /^(?:PASSWORD_FILE|.*_FILE|.*_PATH|.*_DIR)$/i;
/** Content patterns: PEM private keys, AWS access key ids, GitHub/GitLab/Slack tokens, Google API keys. */
const SECRET_CONTENT: readonly [RegExp, string][] = [
  [/-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----/, 'a PEM private key'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, 'an AWS access key id'],
  [/\bgh[pousr]_[A-Za-z0-9]{36,}\b/, 'a GitHub token'],
  [/\bglpat-[A-Za-z0-9_-]{20,}\b/, 'a GitLab token'],
  [/\bxox[abposr]-[A-Za-z0-9-]{10,}\b/, 'a Slack token'],
  [/\bAIza[0-9A-Za-z_-]{35}\b/, 'a Google API key'],
];
/** Files named like credentials. */
const SECRET_FILES = picomatch(
  [
    '**/id_rsa',
    '**/id_dsa',
    '**/id_ecdsa',
    '**/id_ed25519',
    '**/.aws/credentials',
    '**/.docker/config.json',
    '**/.git-credentials',
    '**/.netrc',
    '**/.pgpass',
    '**/*.p12',
    '**/*.pfx',
    '**/.npmrc',
    '**/.pypirc',
  ],
  { dot: true },
);
/** Files whose content is scanned are at most this big; bigger ones are data, not credentials. */
const SCAN_MAX = 256 * 1024;
const NO_SCAN = picomatch(['/usr/share/{doc,man,info,locale,zoneinfo,i18n}/**', '/proc/**', '/sys/**'], {
  dot: true,
});

export function secretInContent(text: string): string | undefined {
  for (const [re, what] of SECRET_CONTENT) if (re.test(text)) return what;
  return undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !SECRET_KEY_NOT.test(key);
}

// --- accounts ---
function ids(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]!)) m.set(f[0]!, Number(f[2]));
  }
  return m;
}

async function readText(tree: Tree, path: string): Promise<string | undefined> {
  const r = tree.resolve(path, { follow: true });
  if (r.entry?.kind !== 'file') return undefined;
  return Buffer.from(await tree.readFile(r.path)).toString('utf8');
}

/** The uid the config's User runs as: a number, a name looked up in /etc/passwd, or undefined when unknown. */
function userUid(user: string, passwd: Map<string, number>): number | undefined {
  const u = user.split(':')[0]!;
  if (/^\d+$/.test(u)) return Number(u);
  return passwd.get(u);
}

const iso = (t: number) =>
  Number.isFinite(t) ? new Date(t * 1000).toISOString().replace('.000Z', 'Z') : String(t);

/**
 * `mtime-not-epoch`: one finding per layer whose entries carry mtimes other than the image's created time (a
 * reproducible build clamps them all to SOURCE_DATE_EPOCH). The evidence path is the first such entry in path order,
 * so the finding names its layer; the detail counts the entries, their distinct mtimes and those newer than created.
 */
function mtimeFindings(
  input: LintInput,
  add: (name: string, message: string, evidence: LintEvidence) => void,
): void {
  const epoch = input.created!;
  const byLayer = new Map<string, { first: string; count: number; newer: number; times: Set<number> }>();
  for (const path of input.tree.paths()) {
    if (path === '/') continue;
    const e = input.tree.get(path)!;
    if (e.mtime === epoch) continue;
    const layer = input.origins ? input.origins.get(path) : '';
    // A parent directory no layer has (the tree made it) is not in the image's bytes.
    if (layer === undefined) continue;
    const g = byLayer.get(layer) ?? { first: path, count: 0, newer: 0, times: new Set<number>() };
    g.count++;
    if (e.mtime > epoch) g.newer++;
    g.times.add(e.mtime);
    byLayer.set(layer, g);
  }
  for (const g of byLayer.values()) {
    const t = input.tree.get(g.first)!.mtime;
    add(
      'mtime-not-epoch',
      `${g.count} entr${g.count === 1 ? 'y has' : 'ies have'} mtimes other than the image's created time ${iso(epoch)} (${g.times.size} distinct, ${g.newer} newer), e.g. ${g.first} at ${iso(t)}`,
      {
        path: g.first,
        detail: `${g.count} entries, ${g.times.size} distinct mtimes, ${g.newer} newer than created`,
      },
    );
  }
}

/** Lints an image: findings sorted by rule order, then path. `accepts` marks findings accepted. */
export async function lintImage(
  input: LintInput,
  accepts: readonly Acceptance[] = [],
): Promise<LintFinding[]> {
  const { tree, config } = input;
  const raw: Omit<LintFinding, 'accepted'>[] = [];
  const add = (name: string, message: string, evidence: LintEvidence): void => {
    const r = BY_NAME.get(name)!;
    const layer = evidence.path !== undefined ? input.origins?.get(evidence.path) : undefined;
    raw.push({
      id: r.id,
      name: r.name,
      severity: r.severity,
      message,
      fix: r.fix,
      evidence: { ...evidence, ...(layer ? { layer } : {}) },
    });
  };

  const passwd = ids(await readText(tree, '/etc/passwd'));
  const group = ids(await readText(tree, '/etc/group'));

  // Config: user, health check, secrets in env and labels.
  const user = config?.User ?? '';
  if (user === '') {
    add('user-missing', 'config.User is not set: the process runs as root', { key: 'config.User' });
    add('root-user', 'config.User is not set, so the process runs as uid 0', { key: 'config.User' });
  } else {
    const uid = userUid(user, passwd);
    if (uid === 0)
      add('root-user', `config.User ${JSON.stringify(user)} is uid 0`, { key: 'config.User', detail: user });
    if (user.split(':')[0] === 'nobody' || uid === 65534)
      add('user-nobody', `config.User ${JSON.stringify(user)} is the shared nobody account`, {
        key: 'config.User',
        detail: user,
      });
  }
  if (config?.Healthcheck === undefined || config.Healthcheck === null)
    add('no-healthcheck', 'the config has no Healthcheck', { key: 'config.Healthcheck' });
  (config?.Env ?? []).forEach((kv, i) => {
    const eq = kv.indexOf('=');
    const k = eq < 0 ? kv : kv.slice(0, eq);
    const v = eq < 0 ? '' : kv.slice(eq + 1);
    const what = secretInContent(v);
    if ((isSecretKey(k) && v !== '') || what)
      add('secret-env', `environment variable ${k} holds ${what ?? 'a value named like a secret'}`, {
        key: `config.Env[${i}]`,
        detail: k,
      });
  });
  for (const [k, v] of Object.entries(config?.Labels ?? {}).sort(([a], [b]) => cmp(a, b))) {
    const what = secretInContent(v);
    const last = k.split(/[./]/).pop() ?? k;
    if ((isSecretKey(last.replace(/-/g, '_')) && v !== '') || what)
      add('secret-label', `label ${k} holds ${what ?? 'a value named like a secret'}`, {
        key: `config.Labels.${k}`,
        detail: k,
      });
  }
  if (input.tag !== undefined && (input.tag === '' || input.tag === 'latest'))
    add(
      'latest-tag',
      input.tag === '' ? 'the reference has no tag (means latest)' : 'the reference uses the latest tag',
      {
        detail: input.tag || '(none)',
      },
    );

  if (input.signature && !input.signature.signed)
    add('unsigned', `no signature: ${input.signature.detail}`, { detail: input.signature.detail });

  // Files.
  const pathDirs = new Set(
    ((config?.Env ?? []).find((kv) => kv.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH)
      .split(':')
      .filter((d) => d.startsWith('/')),
  );
  const uids = new Set(passwd.values());
  const gids = new Set(group.values());
  const sudo = new Set(['/usr/bin/sudo', '/bin/sudo', '/usr/sbin/sudo', '/etc/sudoers']);
  for (const path of tree.paths()) {
    const e = tree.get(path)!;
    if (e.kind === 'symlink') continue;
    if (e.kind === 'file' && (e.mode & 0o6000) !== 0)
      add(
        'setuid',
        `${path} is ${(e.mode & 0o4000) !== 0 ? 'setuid' : 'setgid'} (mode ${(e.mode & 0o7777).toString(8)})`,
        {
          path,
        },
      );
    if (
      (e.kind === 'file' || e.kind === 'dir') &&
      (e.mode & 0o002) !== 0 &&
      !(e.kind === 'dir' && (e.mode & 0o1000) !== 0)
    )
      add('world-writable', `${path} is world-writable (mode ${(e.mode & 0o7777).toString(8)})`, { path });
    if (e.uid !== 0 && !uids.has(e.uid))
      add('unknown-owner', `${path} is owned by uid ${e.uid}, which /etc/passwd does not name`, { path });
    else if (e.gid !== 0 && !gids.has(e.gid))
      add('unknown-owner', `${path} has gid ${e.gid}, which /etc/group does not name`, { path });
    if (e.xattrs?.['security.capability'] !== undefined)
      add('file-capabilities', `${path} carries file capabilities (security.capability)`, { path });
    if (sudo.has(path)) add('sudo', `${path} is present`, { path });
    if (
      /^\/var\/cache\/apt\/archives\/[^/]+\.deb$/.test(path) ||
      /^\/var\/lib\/apt\/lists\/[^/]+_[^/]+$/.test(path) ||
      /^\/var\/cache\/apk\/[^/]+$/.test(path) ||
      /^\/(root|home\/[^/]+)\/\.cache\/pip\/[^/]+$/.test(path) ||
      /^\/var\/cache\/(yum|dnf)\/[^/]+$/.test(path)
    ) {
      if (e.kind === 'file' || e.kind === 'dir')
        add('package-cache', `${path} is a package-manager cache`, { path });
    }
    if (e.kind === 'dir' && pathDirs.has(path) && (e.uid !== 0 || (e.mode & 0o022) !== 0))
      add(
        'path-writable',
        `$PATH directory ${path} is writable by a non-root user (${e.uid}:${e.gid}, mode ${(e.mode & 0o7777).toString(8)})`,
        {
          path,
        },
      );
    if (e.kind === 'file' || e.kind === 'hardlink') {
      if (SECRET_FILES(path)) add('secret-file', `${path} is named like a credential file`, { path });
      else if (e.kind === 'file' && e.content.size <= SCAN_MAX && e.content.size > 0 && !NO_SCAN(path)) {
        // ELF files are not scanned (a key in a program is not a leftover file): their head is read, not all of them.
        const head = await e.content.read(0, 4);
        if (!(head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46)) {
          const what = secretInContent(Buffer.from(await e.content.bytes()).toString('latin1'));
          if (what) add('secret-file', `${path} contains ${what}`, { path });
        }
      }
    }
  }
  if (input.created !== undefined) mtimeFindings(input, add);
  for (const { path, rule } of namedPrograms(tree))
    add(rule, `${path} is present (${BY_NAME.get(rule)!.title.replace(/ is present$/, '')})`, { path });

  const order = new Map(LINT_RULES.map((r, i) => [r.name, i]));
  raw.sort(
    (a, b) =>
      order.get(a.name)! - order.get(b.name)! ||
      comparePaths(a.evidence.path ?? '/', b.evidence.path ?? '/') ||
      cmp(a.evidence.key ?? '', b.evidence.key ?? ''),
  );
  const accepted = acceptedBy(accepts);
  return raw.map((f) => ({ ...f, accepted: accepted(f) }));
}

/** Short names of the rules, for messages and policies. */
export function lintRuleNames(): string[] {
  return LINT_RULES.map((r) => r.name);
}

/** Counts of unaccepted findings by severity, the accepted ones, and the verdict (no unaccepted fatal finding). */
export function lintSummary(findings: readonly LintFinding[]): LintReport['summary'] {
  const open = findings.filter((f) => !f.accepted);
  const count = (s: Severity) => open.filter((f) => f.severity === s).length;
  return {
    fatal: count('fatal'),
    warn: count('warn'),
    info: count('info'),
    accepted: findings.length - open.length,
    passed: count('fatal') === 0,
  };
}
