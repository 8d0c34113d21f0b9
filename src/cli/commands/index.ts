import type { Command } from 'commander';
import { register as build } from './build.ts';
import { register as inspect } from './inspect.ts';
import { register as key } from './key.ts';
import { register as run } from './run.ts';
import { register as verifyStore } from './verify-store.ts';

/**
 * Every `pare` subcommand lives in its own file in this folder and exports `register(program)`. Add one import and
 * one entry to COMMANDS per command; keep the list sorted by name.
 */
export type Register = (program: Command) => void;

export const COMMANDS: readonly Register[] = [build, inspect, key, run, verifyStore];
