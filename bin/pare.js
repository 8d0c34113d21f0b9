#!/usr/bin/env -S node --max-semi-space-size=8
// The entry is plain JavaScript, not TypeScript: Node's type stripper (a WebAssembly module) loads on the first `.ts`
// it meets, and the compile cache can only serve the sources imported after enableCompileCache() has run. With this
// file in JavaScript, every `.ts` module comes from the cache on a warm run and the stripper never loads (measured:
// `pare pull --help` 0.33 s → 0.24 s). The cache lives under the OS temp dir.
// The shebang caps V8's young generation (--max-semi-space-size=8): a cold build's peak RSS falls by about a fifth
// at no measurable cost.
// The clone runs the sources (src/cli/main.ts); the package ships no src/, only their compilation (dist/, built by
// `npm run build` before every pack), so there this file runs dist/cli/main.js. Node refuses to strip types under
// node_modules, hence compiled JavaScript in the package.
// This file must parse and run up to the version check on any Node still met in the wild: a static import only of
// what every Node has, the rest after the check.
import { existsSync } from 'node:fs';

/** The oldest Node the test suite passes on; package.json's engines says the same (test/install checks it). */
const NODE_MAJOR = 24;

if (Number(process.versions.node.split('.')[0]) < NODE_MAJOR) {
  process.stderr.write(`pare needs Node.js ≥ ${NODE_MAJOR} (found v${process.versions.node})\n`);
  process.exit(2);
}
const { enableCompileCache } = await import('node:module');
enableCompileCache();
const source = new URL('../src/cli/main.ts', import.meta.url);
const { main } = await import(existsSync(source) ? source.href : '../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
