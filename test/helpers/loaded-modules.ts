import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Lists the modules a Node process loads, through the loader itself: a preload registers a synchronous load hook
 * (`module.registerHooks`, which sees `import` and `require` alike) and writes every URL it saw when the process
 * exits. Builtins appear as `node:…`.
 */
const PRELOAD = [
  "import { registerHooks } from 'node:module';",
  "import { writeFileSync } from 'node:fs';",
  'const seen = [];',
  'registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });',
  "process.on('exit', () => writeFileSync(process.env.PARE_TEST_MODULES_OUT, seen.join('\\n')));",
].join('\n');

/** What a run loaded: file modules (URLs) and builtins, in load order. */
export interface LoadedModules {
  readonly status: number | null;
  readonly stdout: string;
  readonly files: readonly string[];
  readonly builtins: readonly string[];
}

/** Runs `node [nodeArgs] script args` and returns the modules it loaded. */
export function loadedModules(
  node: string,
  nodeArgs: readonly string[],
  script: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): LoadedModules {
  const dir = mkdtempSync(join(tmpdir(), 'pare-modules-'));
  try {
    const out = join(dir, 'modules');
    const r = spawnSync(
      node,
      [...nodeArgs, '--import', `data:text/javascript,${encodeURIComponent(PRELOAD)}`, script, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env, PARE_TEST_MODULES_OUT: out },
        encoding: 'utf8',
      },
    );
    const urls = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    return {
      status: r.status,
      stdout: r.stdout,
      files: urls.filter((u) => u.startsWith('file:')),
      builtins: urls.filter((u) => u.startsWith('node:')),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
