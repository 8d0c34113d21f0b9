#!/usr/bin/env -S node --max-semi-space-size=8
// The entry is plain JavaScript, not TypeScript: Node's type stripper (a WebAssembly module) loads on the first `.ts`
// it meets, and the compile cache can only serve the sources imported after enableCompileCache() has run. With this
// file in JavaScript, every `.ts` module comes from the cache on a warm run and the stripper never loads (measured:
// `pare pull --help` 0.33 s → 0.24 s). The cache lives under the OS temp dir.
// The shebang caps V8's young generation (--max-semi-space-size=8): a cold build's peak RSS falls by about a fifth
// at no measurable cost.
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
