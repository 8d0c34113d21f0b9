import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NODE as CLONE_NODE, PARE as CLONE_PARE } from '../helpers/cli.ts';
import { type Installed, packAndInstall, SYSTEM_PATH } from '../helpers/installed.ts';
import { loadedModules } from '../helpers/loaded-modules.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * The package a user installs (issue 15 §1): `npm pack` (whose `prepare` compiles dist/ with tsc), `npm install -g`
 * into a temp prefix, then the installed `pare` run from a directory outside the clone with a PATH holding no clone
 * and only the pinned Node, and `import … from 'pare'` (JavaScript and TypeScript) from another project.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const NODE_MAJOR = Number(
  /const NODE_MAJOR = (\d+);/.exec(readFileSync(join(ROOT, 'bin/pare.js'), 'utf8'))?.[1],
);

/** The first `node` on the system PATH older than NODE_MAJOR (Debian's nodejs here: v20), if any. */
function olderSystemNode(): { dir: string; version: string } | undefined {
  for (const dir of SYSTEM_PATH.split(':')) {
    const node = join(dir, 'node');
    if (!existsSync(node)) continue;
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    if (Number(/^v(\d+)\./.exec(version)?.[1]) < NODE_MAJOR) return { dir, version };
  }
  return undefined;
}
let work: string;
let inst: Installed;

function run(cmd: string, args: readonly string[], cwd: string, path = inst.path) {
  const r = spawnSync(cmd, args, { cwd, env: { PATH: path, HOME: work, NO_COLOR: '1' }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the npm package', () => {
  beforeAll(() => {
    work = tempDir('pare-install-');
    inst = packAndInstall(work);
  }, 300_000);

  it('ships compiled JavaScript with declarations, and no TypeScript sources or tests', () => {
    const list = execFileSync('tar', ['-tzf', inst.tarball], { encoding: 'utf8' }).trim().split('\n');
    expect(list).toContain('package/bin/pare.js');
    expect(list).toContain('package/dist/index.js');
    expect(list).toContain('package/dist/index.d.ts');
    expect(list).toContain('package/dist/cli/main.js');
    expect(list).toContain('package/dist/cli/commands/build.js');
    expect(list.filter((f) => f.startsWith('package/src/'))).toEqual([]);
    expect(list.filter((f) => /\.test\.|(?<!\.d)\.ts$/.test(f))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(inst.pkg, 'package.json'), 'utf8'));
    expect(manifest.bin).toEqual({ pare: 'bin/pare.js' });
    expect(manifest.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
  });

  it('declares in engines the Node the bin checks for', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(NODE_MAJOR).toBeGreaterThan(0);
    expect(manifest.engines.node).toBe(`>=${NODE_MAJOR}`);
  });

  it('builds a files-only project (test/fixtures/build/files-only) from outside the clone, to the digest the clone builds', () => {
    const dir = join(work, 'elsewhere');
    cpSync(join(ROOT, 'test/fixtures/build/files-only'), join(dir, 'examples/hello'), { recursive: true });
    const installed = run(inst.bin, ['build', 'examples/hello', '-o', 'out'], dir);
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stderr).toContain(`built oci:${join(dir, 'out')}:hello`);
    const digest = installed.stdout.split('\n')[0]!;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // the same sources run from the clone give the same image
    const clone = spawnSync(CLONE_NODE, [CLONE_PARE, 'build', 'examples/hello', '-o', 'out-clone'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(clone.status).toBe(0);
    expect(clone.stdout.split('\n')[0]).toBe(digest);
    // The vulnerable-function data (src/vex/data/*.json) is in dist/: --explain names the entry it found.
    writeFileSync(join(dir, 'findings.txt'), 'CVE-2022-37434 zlib1g\n');
    const vex = run(
      inst.bin,
      ['vex', 'oci:out:hello', '--report', 'findings.txt', '--explain', 'CVE-2022-37434', '-o', 'vex.json'],
      dir,
    );
    expect(vex.code, vex.stderr).toBe(0);
    expect(vex.stdout).toContain('zlib.json: CVE-2022-37434 (function-level');
  });

  it('on an older Node, says which Node it needs and exits 2', (ctx) => {
    const old = olderSystemNode();
    if (!old) {
      console.warn(
        '[skip] no Node older than the pinned one on the system PATH to test the version check with',
      );
      return ctx.skip();
    }
    // the system Node first on PATH, as `#!/usr/bin/env node` finds it
    const r = run(inst.bin, ['--version'], work, `${old.dir}:${inst.path}`);
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr: `pare needs Node.js ≥ ${NODE_MAJOR} (found ${old.version})\n`,
    });
  });

  it('runs compiled code only, and as few modules as the sources do', () => {
    for (const args of [['--version'], ['inspect', '--help']]) {
      const installed = loadedModules(join(inst.nodeDir, 'node'), [], inst.bin, args, {
        cwd: work,
        env: { PATH: inst.path },
      });
      expect(installed.status).toBe(0);
      const own = installed.files.filter((u) => u.includes('/lib/node_modules/pare/'));
      expect(own.filter((u) => !u.includes('/node_modules/pare/node_modules/'))).not.toEqual([]);
      expect(installed.files.filter((u) => /\.[cm]?ts$/.test(u))).toEqual([]);
      const clone = loadedModules(CLONE_NODE, [], CLONE_PARE, args, { cwd: work });
      expect(installed.files.length).toBe(clone.files.length);
    }
  });

  it('is importable from another project, in JavaScript and with its TypeScript declarations', () => {
    const project = join(work, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{"name":"consumer","private":true,"type":"module"}\n');
    execFileSync(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', inst.tarball],
      { cwd: project, env: { ...process.env, PATH: inst.path }, stdio: 'pipe' },
    );
    writeFileSync(
      join(project, 'use.js'),
      [
        "import { BaseError, DigestError, parseDigest, sha256 } from 'pare';",
        'try { parseDigest("sha256:nope"); } catch (e) {',
        '  console.log(e instanceof DigestError, e instanceof BaseError, e.code);',
        '}',
        'console.log(sha256("")); // the hex of the empty string',
      ].join('\n'),
    );
    const r = run(join(inst.nodeDir, 'node'), ['use.js'], project);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([
      'true true DIGEST_INVALID',
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ]);
    // The declarations type-check a consumer (and reject a misuse).
    writeFileSync(
      join(project, 'use.ts'),
      [
        "import { type Digest, sha256, UsageError, type UsageErrorCode } from 'pare';",
        "const d: Digest = sha256('x');",
        "const code: UsageErrorCode = new UsageError('INPUT_INVALID', 'x').code;",
        '// @ts-expect-error the codes are a closed union',
        "new UsageError('NOT_A_CODE', 'x');",
        'export { code, d };',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          strict: true,
          noEmit: true,
          // a Node library's consumer has @types/node (this one borrows the clone's) and, like most, skips checking
          // its dependencies' declarations (openpgp's name a package it does not install)
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['use.ts'],
      }),
    );
    const tsc = run(
      inst.nodeDir + '/node',
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      project,
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  });

  it('exports every error class of the sources', () => {
    // every class whose chain of `extends` reaches BaseError
    const parents = new Map<string, string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
          for (const m of readFileSync(p, 'utf8').matchAll(/^export class (\w+)(?:<[^>]*>)? extends (\w+)/gm))
            parents.set(m[1]!, m[2]!);
      }
    };
    walk(join(ROOT, 'src'));
    const reachesBase = (c: string | undefined): boolean =>
      c === 'BaseError' || (c !== undefined && reachesBase(parents.get(c)));
    const classes = new Set(['BaseError', ...[...parents.keys()].filter((c) => reachesBase(parents.get(c)))]);
    expect(classes.size).toBeGreaterThan(10);
    const script = `import * as pare from 'pare'; console.log(JSON.stringify(Object.keys(pare)));`;
    const project = join(work, 'consumer');
    const r = run(join(inst.nodeDir, 'node'), ['--input-type=module', '-e', script], project);
    const exported = new Set(JSON.parse(r.stdout) as string[]);
    expect([...classes].filter((c) => !exported.has(c)).sort()).toEqual([]);
  });
});
