import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';

/**
 * Every `pare` subcommand lives in its own file in this folder, named after the command (`verify-store.ts` →
 * `pare verify-store`), and exports `register(program)`. Files are discovered, not listed, so adding a command touches
 * no shared file; and only the invoked command's module is loaded, which keeps start-up fast.
 */
export type Register = (program: Command) => void;

const DIR = import.meta.dirname;
// `.ts` in the source tree, `.js` in the compiled package (dist/): the commands share this file's extension.
const EXT = import.meta.url.slice(import.meta.url.lastIndexOf('.'));

/** Returns the command names there are files for, sorted. */
export function commandNames(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith(EXT) && !/\.(test|d)\.[jt]s$/.test(f) && f !== `index${EXT}`)
    .map((f) => f.slice(0, -EXT.length))
    .sort();
}

/** Loads the register functions of `only` (when a file has that name) or of every command. */
export async function loadCommands(only?: string): Promise<Register[]> {
  const names = commandNames();
  const pick = only !== undefined && names.includes(only) ? [only] : names;
  const mods = await Promise.all(
    pick.map((n) => import(join(DIR, `${n}${EXT}`)) as Promise<{ register?: Register }>),
  );
  return mods.flatMap((m) => (m.register ? [m.register] : []));
}
