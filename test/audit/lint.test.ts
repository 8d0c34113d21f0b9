/**
 * Image lint rules: each rule fires on a tree or config built to show it (positive) and stays quiet on the nearest
 * clean variant (negative). Trees are built with TreeBuilder; the CLI case goes through buildImage + an OCI layout.
 */
import { describe, expect, it } from 'vitest';
import {
  LINT_RULES,
  type LintConfig,
  type LintInput,
  lintImage,
  lintSummary,
  parseAcceptance,
  parseIgnoreFile,
} from '../../src/audit/index.ts';
import { UsageError } from '../../src/errors.ts';
import { bufferContent, fileEntry, symlinkEntry, type Tree, TreeBuilder } from '../../src/fstree/index.ts';

const text = (s: string) => bufferContent(new TextEncoder().encode(s));
const exe = (s = '\x7fELF') => fileEntry(text(s), { mode: 0o755 });

/** A clean image: accounts, a non-root user, a health check, root-owned 0755 $PATH directories. */
function base(): TreeBuilder {
  return new TreeBuilder()
    .mkdirp('/usr/bin')
    .mkdirp('/usr/sbin')
    .mkdirp('/tmp', { mode: 0o1777 })
    .put('/bin', symlinkEntry('usr/bin'))
    .put(
      '/etc/passwd',
      fileEntry(
        text(
          'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n',
        ),
      ),
    )
    .put('/etc/group', fileEntry(text('root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\n')))
    .mkdirp('/home/nonroot', { uid: 65532, gid: 65532, mode: 0o700 })
    .put('/usr/bin/app', exe());
}
const CONFIG: LintConfig = {
  User: '65532:65532',
  Env: ['PATH=/usr/local/bin:/usr/bin:/bin'],
  Entrypoint: ['/usr/bin/app'],
  Healthcheck: { Test: ['CMD', '/usr/bin/app', '--health'] },
};

type Side = {
  tree?: (b: TreeBuilder) => TreeBuilder;
  config?: Partial<LintConfig>;
  tag?: string;
  input?: Pick<LintInput, 'signature' | 'created'>;
};
type Case = [rule: string, positive: Side, negative: Side];

const cases: Case[] = [
  ['root-user', { config: { User: 'root' } }, { config: { User: 'nonroot' } }],
  ['root-user', { config: { User: '0:0' } }, { config: { User: '65532' } }],
  ['no-healthcheck', { config: { Healthcheck: undefined } }, {}],
  [
    'setuid',
    { tree: (b) => b.put('/usr/bin/su', fileEntry(text('x'), { mode: 0o4755 })) },
    { tree: (b) => b.put('/usr/bin/su', fileEntry(text('x'), { mode: 0o755 })) },
  ],
  [
    'setuid',
    { tree: (b) => b.put('/usr/bin/wall', fileEntry(text('x'), { mode: 0o2755 })) },
    // A setgid directory is not a privilege gain.
    { tree: (b) => b.mkdirp('/var/mail', { mode: 0o2775 }) },
  ],
  [
    'secret-env',
    { config: { Env: ['PATH=/usr/bin', 'DB_PASSWORD=hunter2'] } },
    { config: { Env: ['PATH=/usr/bin', 'DB_PASSWORD_FILE=/run/secrets/db', 'DB_PASSWORD='] } },
  ],
  [
    'secret-env',
    { config: { Env: ['PATH=/usr/bin', 'CONFIG=AKIAIOSFODNN7EXAMPLE'] } },
    { config: { Env: ['PATH=/usr/bin', 'CONFIG=AKIA-not-a-key'] } },
  ],
  [
    'secret-label',
    { config: { Labels: { 'com.example.api-key': 'abc123' } } },
    { config: { Labels: { 'org.opencontainers.image.source': 'git' } } },
  ],
  [
    'secret-file',
    {
      tree: (b) =>
        b.put(
          '/app/key.pem',
          fileEntry(
            text(
              '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n',
            ),
          ),
        ),
    },
    {
      tree: (b) =>
        b.put(
          '/app/cert.pem',
          fileEntry(text('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')),
        ),
    },
  ],
  [
    'secret-file',
    { tree: (b) => b.put('/root/.aws/credentials', fileEntry(text('[default]\n'))) },
    { tree: (b) => b.put('/root/.aws/config', fileEntry(text('[default]\nregion=x\n'))) },
  ],
  [
    'secret-file',
    { tree: (b) => b.put('/app/settings.py', fileEntry(text(`TOKEN = "ghp_${'a1B2'.repeat(9)}"\n`))) },
    { tree: (b) => b.put('/app/settings.py', fileEntry(text('TOKEN = os.environ["TOKEN"]\n'))) },
  ],
  [
    'sudo',
    { tree: (b) => b.put('/usr/bin/sudo', fileEntry(text('x'), { mode: 0o4755 })) },
    { tree: (b) => b.put('/usr/share/doc/sudo/copyright', fileEntry(text('x'))) },
  ],
  [
    'package-cache',
    {
      tree: (b) => b.put('/var/lib/apt/lists/deb.example_dists_bookworm_InRelease', fileEntry(text('x'))),
    },
    {
      tree: (b) => b.mkdirp('/var/lib/apt/lists/partial').put('/var/lib/apt/lists/lock', fileEntry(text(''))),
    },
  ],
  [
    'package-cache',
    { tree: (b) => b.put('/var/cache/apt/archives/libc6_2.36_amd64.deb', fileEntry(text('!<arch>'))) },
    { tree: (b) => b.mkdirp('/var/cache/apt/archives/partial') },
  ],
  ['latest-tag', { tag: 'latest' }, { tag: '1.2.3' }],
  ['latest-tag', { tag: '' }, {}],
  [
    'world-writable',
    { tree: (b) => b.mkdirp('/srv/drop', { mode: 0o777 }) },
    { tree: (b) => b.mkdirp('/srv/drop', { mode: 0o1777 }) },
  ],
  [
    'world-writable',
    { tree: (b) => b.put('/etc/app.conf', fileEntry(text('x'), { mode: 0o666 })) },
    { tree: (b) => b.put('/etc/app.conf', fileEntry(text('x'), { mode: 0o664 })) },
  ],
  [
    'unknown-owner',
    { tree: (b) => b.put('/srv/data', fileEntry(text('x'), { uid: 1000, gid: 65532 })) },
    { tree: (b) => b.put('/srv/data', fileEntry(text('x'), { uid: 65532, gid: 65532 })) },
  ],
  [
    'unknown-owner',
    { tree: (b) => b.put('/srv/data', fileEntry(text('x'), { uid: 65532, gid: 4242 })) },
    { tree: (b) => b.put('/srv/data', fileEntry(text('x'), { uid: 65532, gid: 65534 })) },
  ],
  [
    'path-writable',
    { tree: (b) => b.mkdirp('/usr/local/bin', { mode: 0o775, gid: 65532 }) },
    // The same directory off $PATH is not a PATH hijack.
    {
      tree: (b) =>
        b.mkdirp('/usr/local/bin', { mode: 0o755 }).mkdirp('/opt/bin', { mode: 0o775, gid: 65532 }),
    },
  ],
  [
    'path-writable',
    { tree: (b) => b.mkdirp('/usr/local/bin', { uid: 65532, gid: 65532 }) },
    { tree: (b) => b.mkdirp('/home/nonroot/bin', { uid: 65532, gid: 65532 }) },
  ],
  [
    'file-capabilities',
    {
      tree: (b) =>
        b.put(
          '/usr/bin/ping',
          fileEntry(text('x'), {
            mode: 0o755,
            xattrs: { 'security.capability': new Uint8Array([1, 0, 0, 2]) },
          }),
        ),
    },
    {
      tree: (b) =>
        b.put(
          '/usr/bin/ping',
          fileEntry(text('x'), { mode: 0o755, xattrs: { 'user.note': new Uint8Array([1]) } }),
        ),
    },
  ],
  [
    'shell-present',
    { tree: (b) => b.put('/usr/bin/dash', exe()).put('/usr/bin/sh', symlinkEntry('dash')) },
    // Named like a shell but not a program: a completion file, and a dangling symlink.
    {
      tree: (b) =>
        b
          .put('/usr/share/bash-completion/completions/bash', fileEntry(text('x')))
          .put('/usr/bin/sh', symlinkEntry('dash')),
    },
  ],
  [
    'shell-present',
    { tree: (b) => b.put('/usr/bin/busybox', exe()).put('/usr/bin/ash', symlinkEntry('busybox')) },
    { tree: (b) => b.put('/usr/bin/bash', fileEntry(text('x'), { mode: 0o644 })) },
  ],
  [
    'package-manager-present',
    { tree: (b) => b.put('/usr/bin/apt-get', exe()).put('/usr/bin/dpkg', exe()) },
    { tree: (b) => b.put('/usr/share/dpkg/cputable', fileEntry(text('x'))) },
  ],
  [
    'compiler-present',
    {
      tree: (b) =>
        b
          .put('/usr/bin/x86_64-linux-gnu-gcc-12', exe())
          .put('/usr/bin/gcc', symlinkEntry('x86_64-linux-gnu-gcc-12')),
    },
    { tree: (b) => b.put('/usr/bin/gcc-ar-notes', exe()) },
  ],
  [
    'debugger-present',
    { tree: (b) => b.put('/usr/bin/strace', exe()) },
    { tree: (b) => b.put('/usr/lib/strace/README', fileEntry(text('x'))) },
  ],
  [
    'network-tool-present',
    { tree: (b) => b.put('/usr/bin/curl', exe()) },
    { tree: (b) => b.put('/usr/lib/x86_64-linux-gnu/libcurl.so.4', exe()) },
  ],
  [
    'unsigned',
    { input: { signature: { signed: false, detail: 'no sigstore bundle referrer in oci:x' } } },
    { input: { signature: { signed: true, detail: 'a sigstore bundle referrer in oci:x' } } },
  ],
  [
    'mtime-not-epoch',
    // The base tree's entries have mtime 0: an image created later was not clamped to its build date.
    { input: { created: 1_700_000_000 } },
    { input: { created: 0 } },
  ],
  [
    'mtime-not-epoch',
    {
      tree: (b) => b.put('/etc/built', fileEntry(text('x'), { mtime: 1_700_000_123 })),
      input: { created: 0 },
    },
    { tree: (b) => b.put('/etc/built', fileEntry(text('x'), { mtime: 0 })), input: { created: 0 } },
  ],
  ['user-missing', { config: { User: undefined } }, { config: { User: '65532' } }],
  ['user-missing', { config: { User: '' } }, { config: { User: 'nonroot:nonroot' } }],
  ['user-nobody', { config: { User: 'nobody' } }, { config: { User: 'nonroot' } }],
  ['user-nobody', { config: { User: '65534:65534' } }, { config: { User: '65533' } }],
];

async function lint(side: Case[1]) {
  const tree: Tree = (side.tree ?? ((b) => b))(base()).build();
  const config = { ...CONFIG, ...side.config };
  return lintImage({ tree, config, ...(side.tag !== undefined ? { tag: side.tag } : {}), ...side.input });
}

describe('lint rules', () => {
  it('the clean base image has no findings', async () => {
    expect(await lint({})).toEqual([]);
  });

  it('every rule has a positive and a negative case below; ids and names are stable and unique', () => {
    const tested = new Set(cases.map((c) => c[0]));
    expect(LINT_RULES.map((r) => r.name).filter((n) => !tested.has(n))).toEqual([]);
    expect(new Set(LINT_RULES.map((r) => r.name)).size).toBe(LINT_RULES.length);
    for (const r of LINT_RULES) expect(r.id).toMatch(/^(CIS-DI|DKL-DI|PARE-[A-Z])-?\d{3,4}$/);
  });

  it.each(cases.map((c, i) => [`${c[0]} #${i}`, c] as const))(
    '%s: fires on the positive case only',
    async (_n, c) => {
      const [rule, positive, negative] = c;
      const pos = await lint(positive);
      const hit = pos.filter((f) => f.name === rule);
      expect(hit.length, JSON.stringify(pos, null, 1)).toBeGreaterThan(0);
      for (const f of hit) {
        expect(f.fix).not.toBe('');
        expect(f.evidence.path ?? f.evidence.key ?? f.evidence.detail).toBeDefined();
      }
      expect((await lint(negative)).filter((f) => f.name === rule)).toEqual([]);
    },
  );

  it('never prints a secret value, only its name', async () => {
    const f = await lint({ config: { Env: ['PATH=/usr/bin', 'API_KEY=s3cr3t-value'] } });
    expect(JSON.stringify(f)).not.toContain('s3cr3t-value');
    expect(f.find((x) => x.name === 'secret-env')?.evidence).toEqual({
      key: 'config.Env[1]',
      detail: 'API_KEY',
    });
  });

  it('--accept RULE[:GLOB] marks matching findings accepted and they stop failing the verdict', async () => {
    const tree = base()
      .put('/app/a.pem', fileEntry(text('-----BEGIN PRIVATE KEY-----\n')))
      .put('/srv/b.pem', fileEntry(text('-----BEGIN PRIVATE KEY-----\n')))
      .build();
    const all = await lintImage({ tree, config: CONFIG });
    expect(lintSummary(all)).toMatchObject({ fatal: 2, passed: false });
    const some = await lintImage({ tree, config: CONFIG }, [
      parseAcceptance('secret-file:/app/**', '--accept'),
    ]);
    expect(some.filter((f) => f.accepted).map((f) => f.evidence.path)).toEqual(['/app/a.pem']);
    expect(lintSummary(some)).toMatchObject({ fatal: 1, accepted: 1, passed: false });
    const byId = await lintImage({ tree, config: CONFIG }, [parseAcceptance('CIS-DI-0010', '--accept')]);
    expect(lintSummary(byId)).toMatchObject({ fatal: 0, accepted: 2, passed: true });
  });

  it('an ignore file names file:line:col for an unknown rule or a relative path', () => {
    expect(parseIgnoreFile('# comment\n\nshell-present:/usr/bin/sh\n  PARE-B005\n', '.pareignore')).toEqual([
      { rule: 'shell-present', path: '/usr/bin/sh', source: '.pareignore:3:1' },
      { rule: 'PARE-B005', source: '.pareignore:4:3' },
    ]);
    const bad = (t: string) => {
      try {
        parseIgnoreFile(t, 'x/.pareignore');
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad('setuid\n  shiny-rule\n')).toMatch(/^x\/\.pareignore:2:3: unknown lint rule "shiny-rule"/);
    expect(bad('setuid:usr/bin/su')).toMatch(/^x\/\.pareignore:1:1: path "usr\/bin\/su" must be absolute/);
  });
});
