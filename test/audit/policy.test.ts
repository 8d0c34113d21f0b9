/**
 * The policy gate: a bad policy file is exit 2 naming file:line:col; an image built with buildImage is checked
 * against require (with a per-path override), deny, classes and maxSize (exit 1, each violation listed); a baseline
 * report accepts what it had, so only a new violation fails.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/audit/index.ts';
import { craftElf } from '../../src/elf/index.ts';
import { UsageError } from '../../src/errors.ts';
import { bufferContent, fileEntry, type Tree, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

function refusal(text: string): string {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('policy file', () => {
  it('parses the issue example', () => {
    const p = parsePolicy(
      'require: { relro: full, pie: true, nx: true, canary: true }\ndeny: [setuid, root-user, shell-present]\nclasses: [distroless, scratch]\nmaxSize: 50MiB\n',
      'policy.yaml',
    );
    expect(p).toEqual({
      require: { relro: 'full', pie: true, nx: true, canary: true },
      deny: ['setuid', 'root-user', 'shell-present'],
      classes: ['distroless', 'scratch'],
      maxSize: '50MiB',
    });
  });

  it.each([
    ['an unknown key', 'require: {}\nallow: [x]\n', /^policy\.yaml:2:1: unknown key "allow"/],
    [
      'an unknown requirement',
      'require:\n  relro: full\n  shiny: true\n',
      /^policy\.yaml:3:3: unknown key "shiny" in require/,
    ],
    [
      'an unknown lint rule',
      'deny: [setuid, no-such]\n',
      /^policy\.yaml:1:16: deny\.1: not a lint rule id or short name/,
    ],
    ['an unknown class', 'classes: [tiny]\n', /^policy\.yaml:1:11: classes\.0: /],
    ['a bad size', 'maxSize: 50 megs\n', /^policy\.yaml:1:10: maxSize: /],
    [
      'a relative override path',
      'overrides:\n  - paths: [usr/bin/x]\n    require: {pie: false}\n',
      /^policy\.yaml:2:13: overrides\.0\.paths\.0: /,
    ],
    ['broken YAML', 'deny: [setuid\n', /^policy\.yaml:\d+:\d+: /],
  ])('refuses %s with file:line:col', (_what, text, want) => {
    expect(refusal(text)).toMatch(want);
  });
});

describe('pare audit --policy on an image', () => {
  const dir = tempDir('pare-policy-');
  const exe = (o: Parameters<typeof craftElf>[0]) => fileEntry(bufferContent(craftElf(o)), { mode: 0o755 });

  async function layout(name: string, tree: Tree): Promise<string> {
    const image = buildImage({
      layers: [layerFromTree(tree)],
      platform: { os: 'linux', architecture: 'amd64' },
      created: '2024-01-01T00:00:00Z',
      config: { Entrypoint: ['/app/server'], User: '65532' },
    });
    const d = join(dir, name);
    await (await OciLayout.create(d)).writeArtifact({ kind: 'image', image }, { tag: 't' });
    return `oci:${d}:t`;
  }
  // A static program (partial RELRO, no canary) and a setuid helper; a second image adds a shell.
  const base = () =>
    new TreeBuilder()
      .put('/app/server', exe({ machine: 62, type: 'EXEC' }))
      .put('/usr/libexec/helper', { ...exe({ machine: 62, type: 'EXEC' }), mode: 0o4755 });
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    [
      'require: { relro: full, nx: true }',
      'overrides:',
      '  - paths: [/usr/libexec/**]',
      '    require: { nx: true }',
      'deny: [setuid, shell-present]',
      'classes: [distroless]',
      'maxSize: 1KiB',
      '',
    ].join('\n'),
  );

  it('lists every violation and exits 1; a baseline of that report passes; a new violation fails again', async () => {
    const ref = await layout('a', base().build());
    const r = await pare(['audit', ref, '--policy', policy, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(
      report.policy.violations.map((v: { rule: string; subject: string; baseline: boolean }) => [
        v.rule,
        v.subject,
        v.baseline,
      ]),
    ).toEqual([
      // The override replaces relro=full for /usr/libexec: only /app/server violates it.
      ['require', '/app/server', false],
      ['deny', '/usr/libexec/helper', false],
      ['classes', 'shell-less', false],
      ['maxSize', expect.stringMatching(/^\d+$/), false],
    ]);
    expect(report.policy.passed).toBe(false);
    const baseline = join(dir, 'baseline.json');
    writeFileSync(baseline, r.stdout);

    const table = await pare(['audit', ref, '--policy', policy]);
    expect(table.code).toBe(1);
    expect(table.stdout).toContain('VIOLATES require  /app/server does not meet relro=full');
    expect(table.stdout).toContain('policy failed: 4 violations');

    const again = await pare(['audit', ref, '--policy', policy, '--baseline', baseline]);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toContain('policy passed (3 violations in the baseline)');

    const withShell = await layout(
      'b',
      base()
        .put('/usr/bin/sh', exe({ machine: 62, type: 'EXEC' }))
        .build(),
    );
    const b = await pare(['audit', withShell, '--policy', policy, '--baseline', baseline, '--json']);
    expect(b.code).toBe(1);
    const fresh = JSON.parse(b.stdout).policy.violations.filter((v: { baseline: boolean }) => !v.baseline);
    expect(fresh.map((v: { key: string }) => v.key)).toEqual([
      'require:relro=full:/usr/bin/sh',
      'deny:shell-present:/usr/bin/sh',
      'classes:slim',
    ]);
  });

  it('a bad policy or baseline is exit 2 before the image is read', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'deny: [setuid]\nclasses: [tiny]\n');
    const r = await pare(['audit', 'oci:/nonexistent:t', '--policy', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:2:11: classes.0:`);
    writeFileSync(join(dir, 'not-a-report.json'), '{"files": []}');
    const b = await pare([
      'audit',
      'oci:/nonexistent:t',
      '--policy',
      policy,
      '--baseline',
      join(dir, 'not-a-report.json'),
    ]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('not a pare audit JSON report');
  });
});
