import type { Command } from 'commander';
import { register as key } from './key.ts';

/**
 * Every `pare` subcommand lives in its own file in this folder and exports `register(program)`. Add one import and
 * one entry to COMMANDS per command; keep the list sorted by name.
 */
export type Register = (program: Command) => void;

export const COMMANDS: readonly Register[] = [key];
