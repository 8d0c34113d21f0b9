import type { Command } from 'commander';
import { register as build } from './build.ts';
import { register as copy } from './copy.ts';
import { register as digest } from './digest.ts';
import { register as inspect } from './inspect.ts';
import { register as key } from './key.ts';
import { register as login } from './login.ts';
import { register as pull } from './pull.ts';
import { register as push } from './push.ts';
import { register as referrers } from './referrers.ts';
import { register as run } from './run.ts';
import { register as tags } from './tags.ts';
import { register as verifyStore } from './verify-store.ts';

/**
 * Every `pare` subcommand lives in its own file in this folder and exports `register(program)`. Add one import and
 * one entry to COMMANDS per command; keep the list sorted by name.
 */
export type Register = (program: Command) => void;

export const COMMANDS: readonly Register[] = [
  build,
  copy,
  digest,
  inspect,
  key,
  login,
  pull,
  push,
  referrers,
  run,
  tags,
  verifyStore,
];
