import type { Command } from 'commander';
import { openReference } from '../reference.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare tags REPO`: prints the tags of a registry repository (as `crane ls` does), an OCI layout or an archive (an OCI
 * archive's ref names; `docker-archive:` its RepoTags), one per line.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('tags')
      .description('list the tags of a repository, OCI layout or archive')
      .argument(
        '<repository>',
        'HOST[:PORT]/REPO (docker:// optional), oci:DIR, oci-archive:FILE, docker-archive:FILE or a path',
      ),
  ).action(async (repo: string, opts: RegistryFlags) => {
    const client = lazyClient({ ...opts, quiet: true });
    try {
      const r = await openReference(repo, client);
      for (const t of await r.tags()) process.stdout.write(`${t}\n`);
    } finally {
      await client.close();
    }
  });
}
