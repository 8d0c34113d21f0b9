#!/usr/bin/env node
import { enableCompileCache } from 'node:module';

// Cache compiled code between runs (Node keeps it under the OS temp dir): start-up is most of a warm build.
enableCompileCache();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
