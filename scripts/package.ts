// `npm run package`: pare as one file, dist/pare-linux-<arch>, that runs where no Node is installed — Node's single
// executable application (SEA) format: the pinned Node 24 binary with pare injected (the npm `postject` package).
//   1. rolldown bundles src/cli/main.ts and every dependency it reaches into CommonJS chunks, split where the code
//      splits (each command, each lazily imported library). They travel as SEA assets; the SEA's main script is a
//      small loader that compiles a chunk when it is first required, so `pare --version` compiles the CLI frame, not
//      all of pare. Two seams, each checked: the command files, discovered on disk by src/cli/commands/index.ts,
//      become a static table; @napi-rs/lzma's native addon becomes a SEA asset, written to a private temp directory
//      and dlopen()ed on first use. Builtins imported by ESM code are read through process.getBuiltinModule when the
//      importer is evaluated, not all at start. Dependencies not in package.json's `dependencies` (optional ones
//      such as ajv, which @cyclonedx/cyclonedx-library tries) stay out, as in the npm package.
//   2. `node --experimental-sea-config` makes the preparation blob (no V8 code cache, whose bytes vary: the same
//      commit and pinned Node give the same executable, byte for byte, wherever it is built). A startup snapshot
//      was tried: it works, but started slower than this.
//   3. The Node binary is copied and the blob injected with postject; the SHA-256 is printed and written beside it,
//      and with `--sign KEY` (a cosign or pare key; COSIGN_PASSWORD) a sigstore bundle signing it, as cosign
//      sign-blob writes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { arch } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { rolldown } from 'rolldown';
import { encodeBundle, keySigner, loadPrivateKey, messageBundle } from '../src/attest/index.ts';
import { sourceFingerprint } from '../src/build/fingerprint.ts';

const ROOT = resolve(import.meta.dirname, '..');
const args = parseArgs({ allowPositionals: true, options: { sign: { type: 'string' } } });
// `npm run package -- DIR` writes elsewhere
const OUT = resolve(args.positionals[0] ?? join(ROOT, 'dist'));
const WORK = join(OUT, 'sea');
const NAME = `pare-linux-${arch()}`;
const NODE = realpathSync(join(ROOT, 'node_modules/.bin/node'));
const COMMANDS_INDEX = join(ROOT, 'src/cli/commands/index.ts');
// The executable has no module files to fingerprint at run time: the build caches key their entries by this value,
// computed from the same sources the bundle is made of (src/build/fingerprint.ts).
const FINGERPRINT_MODULE = join(ROOT, 'src/build/fingerprint.ts');
const FINGERPRINT = await sourceFingerprint(new URL(`file://${ROOT}/src/`), '.ts');
const LZMA_VIRTUAL = '\0pare-sea-lzma';
const BUILTIN_VIRTUAL = '\0pare-sea-builtin:';
const require = createRequire(import.meta.url);

if (process.platform !== 'linux')
  throw new Error(`npm run package builds Linux executables; this is ${process.platform}`);
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};
const runtimeDeps = new Set(Object.keys(manifest.dependencies));
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`). */
const packageOf = (id: string): string =>
  id
    .split('/')
    .slice(0, id.startsWith('@') ? 2 : 1)
    .join('/');

// The native addon of @napi-rs/lzma for this platform, shipped inside the executable.
const lzmaNode = (() => {
  const dir = dirname(require.resolve(`@napi-rs/lzma-linux-${arch()}-gnu/package.json`));
  const file = readdirSync(dir).find((f) => f.endsWith('.node'));
  if (!file) throw new Error(`no .node file in ${dir}`);
  return join(dir, file);
})();

// Loaded lazily: a command that never decompresses xz never writes or loads the addon. dlopen() needs a file; it is
// written into a fresh 0700 directory (no other user can swap it) and removed once mapped.
const LZMA_SHIM = `
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
let binding;
function load() {
  if (binding) return binding;
  const dir = mkdtempSync(join(tmpdir(), 'pare-lzma-'));
  try {
    const file = join(dir, 'lzma.node');
    const asset = process.getBuiltinModule('node:sea').getRawAsset('lzma.node');
    writeFileSync(file, new Uint8Array(asset), { mode: 0o500 });
    const m = { exports: {} };
    process.dlopen(m, file);
    binding = m.exports;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return binding;
}
const lazy = (ns) => new Proxy({}, { get: (_, k) => load()[ns][k] });
export const xz = lazy('xz');
export const lzma = lazy('lzma');
export const lzma2 = lazy('lzma2');
`;

// The SEA's main script: a CommonJS loader over the chunk assets (their `require('./chunk.js')` loads the sibling
// chunk; any other require is the SEA's own, which serves builtins only).
const CHUNK_LOADER = `'use strict';
const { getAsset } = require('node:sea');
const { compileFunction } = require('node:vm');
const loaded = new Map();
function load(name) {
  let m = loaded.get(name);
  if (m) return m.exports;
  m = { exports: {} };
  loaded.set(name, m);
  const filename = '/proc/self/pare-sea/' + name;
  const params = ['exports', 'require', 'module', '__filename', '__dirname'];
  const fn = compileFunction(getAsset('chunks/' + name, 'utf8'), params, { filename });
  fn(m.exports, chunkRequire, m, filename, '/proc/self/pare-sea');
  return m.exports;
}
function chunkRequire(id) {
  return id.startsWith('./') ? load(id.slice(2)) : require(id);
}
load('main.js');
`;

/** Replaces `from` by `to` in `code`, exactly once; anything else means the source changed under this script. */
function replaceOnce(code: string, from: string, to: string, file: string): string {
  const at = code.indexOf(from);
  if (at < 0 || code.indexOf(from, at + 1) >= 0)
    throw new Error(
      `${file}: expected exactly one \`${from}\` for the single executable; update scripts/package.ts`,
    );
  return code.slice(0, at) + to + code.slice(at + from.length);
}

const commandFiles = readdirSync(dirname(COMMANDS_INDEX))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'index.ts')
  .sort();

const bundle = await rolldown({
  input: join(ROOT, 'scripts/sea-main.ts'),
  platform: 'node',
  logLevel: 'warn',
  // reading a builtin's export has no side effect, so the exports nobody imports are dropped (not read)
  treeshake: { propertyReadSideEffects: false },
  external: (id) => {
    if (builtins.has(id)) return false; // resolveId below decides
    if (id.startsWith('.') || id.startsWith('/') || id.startsWith('\0')) return false;
    return !runtimeDeps.has(packageOf(id)) && !packageOf(id).startsWith('@napi-rs/');
  },
  plugins: [
    {
      name: 'pare-sea',
      resolveId(id, _importer, extra) {
        if (id === '@napi-rs/lzma') return LZMA_VIRTUAL;
        // An ESM import of a builtin becomes a module reading it through process.getBuiltinModule when the importer
        // is first evaluated: a CommonJS bundle would otherwise require every builtin any command uses (tls, crypto,
        // http, …) before main runs. require() calls stay as they are; they are lazy already.
        if (builtins.has(id))
          return extra.kind === 'import-statement' ? `${BUILTIN_VIRTUAL}${id}` : { id, external: true };
        return null;
      },
      load(id) {
        if (id === LZMA_VIRTUAL) return LZMA_SHIM;
        if (id.startsWith(BUILTIN_VIRTUAL)) {
          const name = id.slice(BUILTIN_VIRTUAL.length);
          const names = Object.keys(require(name) as object).filter(
            (k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default',
          );
          return [
            `const m = process.getBuiltinModule(${JSON.stringify(name)});`,
            'export default m;',
            ...names.map((k) => `export const ${k} = m.${k};`),
          ].join('\n');
        }
        return null;
      },
      transform(code, id) {
        if (!id.startsWith(`${ROOT}/src/`)) return null;
        // A module's own location is a path that cannot exist (nothing can be created under /proc/self), so code
        // that reads files beside itself finds none; the build caches' code fingerprint is embedded instead.
        const url = `file:///proc/self/pare-sea/${id.slice(ROOT.length + 1)}`;
        let out = code
          // a module's own require (of a dependency's internals) becomes the bundle's, so what it requires is bundled
          .replace(/^const require = createRequire\(import\.meta\.url\);$/m, '')
          .replaceAll('import.meta.url', JSON.stringify(url))
          .replaceAll('import.meta.dirname', JSON.stringify(dirname(url.slice('file://'.length))));
        if (id === FINGERPRINT_MODULE)
          out = replaceOnce(
            out,
            'const EMBEDDED: string | undefined = undefined;',
            `const EMBEDDED: string | undefined = ${JSON.stringify(FINGERPRINT)};`,
            id,
          );
        if (id === COMMANDS_INDEX) {
          // the discovered files, listed at build time; each still loaded only when its command runs
          const table = commandFiles.map(
            (f) => `${JSON.stringify(f)}: () => import(${JSON.stringify(`./${f}`)})`,
          );
          out = replaceOnce(out, 'readdirSync(DIR)', JSON.stringify(commandFiles), id);
          out = replaceOnce(
            out,
            // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text to find, not a template
            'import(join(DIR, `${n}${EXT}`))',
            `({${table.join(',')}})[\`\${n}.ts\`]()`,
            id,
          );
        }
        return out;
      },
    },
  ],
});
// Split where the code splits (each command, each lazily imported library), and ship the chunks as SEA assets
// that the main script compiles only when they are required: `pare --version` compiles main.js (the CLI frame and
// commander), not the whole of pare.
const written = await bundle.write({
  dir: join(WORK, 'chunks'),
  format: 'cjs',
  minify: true,
  entryFileNames: 'main.js',
  chunkFileNames: '[name]-[hash].js',
});
await bundle.close();
const chunks = written.output.map((o) => o.fileName).sort();
writeFileSync(join(WORK, 'pare.cjs'), CHUNK_LOADER);

const blob = join(WORK, 'pare.blob');
const config = join(WORK, 'sea-config.json');
writeFileSync(
  config,
  // Paths relative to WORK (the blob records them) and the asset copied there, so the bytes do not depend on where
  // the clone or the output lies.
  JSON.stringify({
    main: 'pare.cjs',
    output: 'pare.blob',
    disableExperimentalSEAWarning: true,
    // no V8 code cache: its bytes differ from build to build, and the chunks below make start-up as cheap
    useCodeCache: false,
    assets: {
      'lzma.node': 'lzma.node',
      ...Object.fromEntries(chunks.map((c) => [`chunks/${c}`, `chunks/${c}`])),
    },
  }),
);
copyFileSync(lzmaNode, join(WORK, 'lzma.node'));
execFileSync(NODE, ['--experimental-sea-config', 'sea-config.json'], {
  cwd: WORK,
  stdio: ['ignore', 'ignore', 'inherit'],
});

const exe = join(OUT, NAME);
rmSync(exe, { force: true });
copyFileSync(NODE, exe);
execFileSync(
  NODE,
  [
    require.resolve('postject/dist/cli.js'),
    exe,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  // postject warns about every ELF note section it does not know; an error still fails the build
  { stdio: ['ignore', 'ignore', 'ignore'] },
);
const bytes = readFileSync(exe);
const sha = createHash('sha256').update(bytes).digest('hex');
writeFileSync(`${exe}.sha256`, `${sha}  ${NAME}\n`);
process.stdout.write(`${exe}\nsha256 ${sha}\n`);
if (args.values.sign) {
  // what `cosign sign-blob --bundle` writes; `cosign verify-blob --key KEY.pub --bundle … --insecure-ignore-tlog` checks it
  const pair = await loadPrivateKey(readFileSync(args.values.sign), {
    password: process.env.COSIGN_PASSWORD,
    source: args.values.sign,
  });
  writeFileSync(`${exe}.sigstore.json`, encodeBundle(await messageBundle(bytes, keySigner(pair))));
  process.stdout.write(`${exe}.sigstore.json\n`);
}
