import type { Command } from 'commander';
import { UsageError } from '../../errors.ts';
import {
  isValidRegistryHost,
  RegistryClient,
  staticCredentials,
  storeCredential,
} from '../../registry/index.ts';
import { clientFromFlags, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare login HOST -u USER --password-stdin`: checks the credentials against the registry (as `docker login` does)
 * and saves them where docker and crane look: the configured credential helper, else `auths` in docker's
 * config.json (`$DOCKER_CONFIG` or ~/.docker), written atomically with mode 0600.
 */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('login')
      .description("log in to a registry and save the credentials in docker's config.json")
      .argument('<host>', 'HOST[:PORT] of the registry')
      .requiredOption('-u, --username <user>', 'user name')
      .option(
        '-p, --password <password>',
        'password (visible to other users of this machine; prefer --password-stdin)',
      )
      .option('--password-stdin', 'read the password from standard input', false),
  ).action(
    async (
      host: string,
      opts: RegistryFlags & { username: string; password?: string; passwordStdin: boolean },
    ) => {
      const h = host
        .replace(/^[a-z]+:\/\//, '')
        .replace(/\/.*$/, '')
        .toLowerCase();
      if (!isValidRegistryHost(h))
        throw new UsageError('USAGE', `cannot log in to ${JSON.stringify(host)}: not a host[:port]`);
      if (opts.password !== undefined && opts.passwordStdin)
        throw new UsageError('USAGE', 'cannot log in: give --password or --password-stdin, not both');
      const password = opts.passwordStdin ? await readStdin() : opts.password;
      if (!password) throw new UsageError('USAGE', 'cannot log in: no password; use --password-stdin');
      const base = await clientFromFlags({ ...opts, quiet: true });
      const client = new RegistryClient({
        ...base.options,
        credentials: staticCredentials(h, { username: opts.username, password }),
      });
      try {
        await client.checkLogin(h);
      } finally {
        await Promise.all([client.close(), base.close()]);
      }
      const stored = await storeCredential(h, { username: opts.username, password });
      process.stderr.write(
        `Login Succeeded (saved ${stored.kind === 'file' ? `in ${stored.path}` : `with docker-credential-${stored.helper}`})\n`,
      );
    },
  );
}
