import type { Command } from 'commander';
import { OciLayout } from '../../layout/index.ts';
import { green, printJson, red } from '../format.ts';

/** `pare verify-store DIR`: re-hashes every blob of an OCI layout and checks every reference. Exit 1 on any issue. */
export function register(program: Command): void {
  program
    .command('verify-store')
    .description('re-hash every blob of an OCI layout and check every reference from index.json down')
    .argument('<dir>', 'OCI layout directory')
    .option('--json', 'print the issues as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const layout = await OciLayout.open(dir);
      const issues = await layout.verify();
      if (opts.json) printJson({ ok: issues.length === 0, issues });
      else if (issues.length === 0)
        process.stdout.write(
          `${green('ok')}: ${dir} is sound (tags: ${(await layout.tags()).join(', ') || 'none'})\n`,
        );
      else
        process.stdout.write(
          `${red('broken')}: ${dir}\n${issues.map((i) => `  ${i.code}: ${i.message}`).join('\n')}\n`,
        );
      if (issues.length > 0) process.exitCode = 1;
    });
}
