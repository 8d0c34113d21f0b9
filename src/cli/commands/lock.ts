import type { Command } from 'commander';
import { planDebian } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
import { parsePlatform } from '../../oci/index.ts';
import { printJson } from '../format.ts';
import { progress as progressFor, progressMode } from '../progress.ts';

/** `pare lock [--update]`: resolve `packages:` and write pare.lock without building. */
export function register(program: Command): void {
  program
    .command('lock')
    .description('resolve the Debian packages of pare.yaml and write pare.lock (no image is built)')
    .argument('[project]', 'a pare.yaml or the directory holding one', '.')
    .option('--update', 'resolve afresh against the archive even if pare.lock still answers the requests')
    .option('--json', 'print the lock summary as JSON')
    .action(async (project: string, opts: { update?: boolean; json?: boolean }) => {
      const loaded = await loadConfig(project);
      if (!loaded.config.packages?.length) {
        process.stderr.write(`${loaded.path} has no packages: nothing to lock\n`);
        return;
      }
      const progress = progressFor(progressMode(opts.json));
      const plan = await planDebian(loaded, loaded.config.platforms.map(parsePlatform), {
        update: opts.update,
        onProgress: progress.download,
      });
      progress.done();
      if (opts.json)
        printJson({
          path: plan.lockPath,
          state: plan.lockState,
          packages: plan.lock.packages,
          suites: plan.lock.suites,
        });
      else
        process.stdout.write(`${plan.lockPath}: ${plan.lock.packages.length} packages (${plan.lockState})\n`);
    });
}
