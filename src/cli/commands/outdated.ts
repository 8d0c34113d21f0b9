import { join } from 'node:path';
import type { Command } from 'commander';
import { debianSource } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
import { findOutdated, readLock } from '../../debian/index.ts';
import { UsageError } from '../../errors.ts';
import { EXIT_FAILED } from '../exit-codes.ts';
import { printJson, progressBar } from '../format.ts';

/**
 * `pare outdated [PROJECT]`: the locked packages that have a newer version in the archive now (suite, -updates and
 * -security, always), with the CVE ids the candidate's changelog names since the locked version. Exit 1 when a
 * security update is pending (a CI gate), 0 when none, 2 on a missing or bad pare.lock.
 */
export function register(program: Command): void {
  program
    .command('outdated')
    .description(
      'list the packages of pare.lock with a newer version in the Debian archive (suite, -updates, -security) and the CVEs fixed since; exit 1 when a security update is pending',
    )
    .argument('[project]', 'a pare.yaml or the directory holding one', '.')
    .option('--json', 'print the report as JSON')
    .action(async (project: string, opts: { json?: boolean }) => {
      const loaded = await loadConfig(project);
      const lockPath = join(loaded.dir, 'pare.lock');
      const lock = await readLock(lockPath);
      if (!lock)
        throw new UsageError(
          'INPUT_NOT_FOUND',
          `cannot check ${lockPath}: there is no lock; run "pare lock" first`,
          {
            file: lockPath,
          },
        );
      const progress = progressBar();
      const report = await findOutdated(lock, debianSource(loaded), { onProgress: progress.update });
      progress.done();
      if (opts.json) printJson({ lock: lockPath, ...report });
      else {
        for (const p of report.packages) {
          const cves =
            p.cves.length > 0 ? p.cves.join(' ') : p.changelog === 'missing' ? '(no changelog)' : '-';
          process.stdout.write(
            `${p.name}:${p.architecture} ${p.locked} -> ${p.candidate} (${p.suite})${p.security ? ' [security]' : ''} ${cves}${p.changelog === 'partial' ? ' (changelog ends before the locked version)' : ''}\n`,
          );
        }
        const n = report.packages.length;
        const sec = report.packages.filter((p) => p.security).length;
        process.stderr.write(
          `${lockPath}: ${n} of ${lock.packages.length} packages outdated, ${sec} with a security update (${report.suites.map((s) => s.suite).join(', ')})\n`,
        );
      }
      if (report.securityPending) process.exitCode = EXIT_FAILED;
    });
}
