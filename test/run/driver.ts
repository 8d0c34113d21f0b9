import { Command } from 'commander';
import { register } from '../../src/cli/commands/run.ts';
import { isPareError, isRunError, UsageError } from '../../src/errors.ts';

/**
 * Runs `pare run …` the way a CLI entry does (commander program, the command's register(), errors → exit codes), for
 * the end-to-end tests in cli.test.ts: `node test/run/driver.ts run IMAGE -- CMD…`. Kept until bin/pare.ts exists.
 */
const program = new Command('pare').exitOverride();
register(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if ((e as { code?: string }).code?.startsWith('commander.'))
    process.exit((e as { exitCode?: number }).exitCode ?? 2);
  if (isRunError(e)) {
    process.stderr.write(`pare: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}[${e.code}]\n`);
    process.exit(125);
  }
  process.stderr.write(`pare: ${(e as Error).message}\n${isPareError(e) ? `[${e.code}]\n` : ''}`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
