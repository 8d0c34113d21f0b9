#!/usr/bin/env -S node --max-semi-space-size=8
import { enableCompileCache } from 'node:module';

// The shebang caps V8's young generation (--max-semi-space-size=8): a cold build's peak RSS falls by about a fifth
// at no measurable cost. Compiled code is cached between runs (under the OS temp dir): start-up is most of a warm build.
enableCompileCache();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
