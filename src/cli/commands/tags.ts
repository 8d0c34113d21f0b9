import type { Command } from 'commander';
import { listTags } from '../../registry/index.ts';
import { clientFromFlags, type RegistryFlags, registryArg, withRegistryFlags } from './copy.ts';

/** `pare tags HOST/REPO`: prints the repository's tags, one per line, as `crane ls` does. */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('tags')
      .description('list the tags of a repository')
      .argument('<repository>', 'HOST[:PORT]/REPO (docker:// optional)'),
  ).action(async (repo: string, opts: RegistryFlags) => {
    const ref = registryArg(repo);
    const client = clientFromFlags({ ...opts, quiet: true });
    try {
      for (const t of await listTags(client, ref)) process.stdout.write(`${t}\n`);
    } finally {
      await client.close();
    }
  });
}
