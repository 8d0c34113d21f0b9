import type { Command } from 'commander';
import { planDebian } from '../../build/index.ts';
import { loadConfig } from '../../config/index.ts';
import { DebianError } from '../../errors.ts';
import { parsePlatform } from '../../oci/index.ts';
import { printJson } from '../format.ts';

/** `pare why PKG`: the dependency chains that bring a Debian package into the image. */
export function register(program: Command): void {
  program
    .command('why')
    .description(
      "explain why a Debian package is in the image: the chains of dependencies from pare.yaml's packages",
    )
    .argument('<package>', 'package name, optionally name:arch')
    .argument('[project]', 'a pare.yaml or the directory holding one', '.')
    .option('--json', 'print the chains as JSON')
    .action(async (pkg: string, project: string, opts: { json?: boolean }) => {
      const loaded = await loadConfig(project);
      const plan = await planDebian(loaded, loaded.config.platforms.map(parsePlatform), { dryRun: true });
      const out: Record<string, unknown> = {};
      let found = false;
      for (const [arch, res] of plan.resolutions) {
        const chains = res.why(pkg);
        if (chains.length > 0) found = true;
        out[arch] = chains;
        if (!opts.json) {
          // A chain runs from a requested root to the package; print it from the package back to the root, each
          // arrow naming the depender and the relation that pulled the line above it in.
          for (const chain of chains) {
            const target = chain[chain.length - 1]!;
            let text = `${arch}: ${target.package} ${target.version}`;
            for (let i = chain.length - 2; i >= 0; i--) {
              const by = chain[i]!;
              const via = chain[i + 1]!;
              text += `\n    ← ${by.package} ${by.version} (${via.field}: ${via.relation})`;
            }
            if (chain.length === 1 || chain[0])
              text += `\n    (${chain[0]!.package} is requested in pare.yaml)`;
            process.stdout.write(`${text}\n`);
          }
        }
      }
      if (opts.json) printJson(out);
      if (!found)
        throw new DebianError(
          'DEBIAN_PACKAGE_NOT_FOUND',
          `cannot explain ${JSON.stringify(pkg)}: it is not among the resolved packages of ${loaded.path}`,
          { package: pkg },
        );
    });
}
