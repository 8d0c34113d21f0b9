import { Command, CommanderError } from 'commander';
import { VERSION } from '../defaults.ts';
import { BaseError } from '../errors.ts';
import { loadCommands } from './commands/index.ts';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, exitCodeOf } from './exit-codes.ts';

/**
 * The `pare` command line. Only this folder prints and sets exit codes:
 *   0 success · 1 a check failed or an operation could not be completed · 2 bad usage or bad input (nothing written).
 * Which error is which is one table: EXIT_RULES in exit-codes.ts.
 */

/** Returns the program with the subcommands registered: only `only`'s when given and known, else all. */
export async function program(only?: string): Promise<Command> {
  const p = new Command('pare')
    .description(
      'small, hardened, verifiable container images from Debian packages — daemonless and reproducible',
    )
    .version(VERSION)
    .option(
      '--progress <mode>',
      'progress of long steps on stderr: auto (only on a terminal), tty, plain or none (default: PARE_PROGRESS, else auto)',
    )
    // Loaded only when given: a command loads only what it needs (test/install/modules.test.ts).
    .hook('preAction', async (root) => {
      const mode = root.opts().progress as string | undefined;
      if (mode !== undefined) (await import('./progress.ts')).setProgressFlag(mode);
    })
    .showHelpAfterError('(run `pare --help` for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  for (const register of await loadCommands(only)) register(p);
  for (const c of p.commands) c.exitOverride();
  return p;
}

/** Returns the exit code for an error (exitCodeOf) and prints it to stderr. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
      return EXIT_OK;
    return EXIT_BAD_INPUT; // commander already printed the message
  }
  const debug = process.env.PARE_DEBUG === '1';
  if (e instanceof BaseError) {
    process.stderr.write(`pare: error: ${e.message}\n`);
    if (debug) {
      let c: unknown = e.cause;
      while (c instanceof Error) {
        process.stderr.write(`  caused by: ${c.message}\n`);
        c = c.cause;
      }
      process.stderr.write(`${e.stack}\n`);
    }
    return exitCodeOf(e);
  }
  process.stderr.write(
    `pare: internal error: ${e instanceof Error ? (debug ? e.stack : e.message) : String(e)}\n`,
  );
  if (!debug) process.stderr.write('(set PARE_DEBUG=1 for details; please report this)\n');
  return EXIT_FAILED;
}

/**
 * A reader that closed its end of the pipe (`pare inspect … | head -1`) has all it wanted: the command ends at once,
 * quietly and with status 0 (not SIGPIPE's 141, which a shell with `pipefail` counts as a failure), instead of dying
 * on an unhandled EPIPE with a stack trace. Any other stream error stays fatal.
 */
function endQuietlyOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  endQuietlyOnClosedPipe();
  // Commander would load every command module (their whole domains: 583 modules) to answer this.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  try {
    // The command name: the first word that is neither an option nor the value of `--progress MODE`.
    const first = argv.find((a, i) => !a.startsWith('-') && argv[i - 1] !== '--progress');
    await (await program(first)).parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e);
  }
}
