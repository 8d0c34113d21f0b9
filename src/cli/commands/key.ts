import type { Command } from 'commander';
import { writeKeyFiles } from '../../attest/index.ts';
import { cosignPassword } from '../password.ts';

/**
 * `pare key generate`: a cosign-compatible key pair (`<prefix>.key` in cosign's encrypted format, `<prefix>.pub`).
 * The password comes from COSIGN_PASSWORD, as cosign reads it (an empty value means no password), else from a prompt
 * (twice) when stdin is a terminal.
 */
export function register(program: Command): void {
  const key = program.command('key').description('manage signing keys (cosign-compatible)');
  key
    .command('generate')
    .description(
      'generate an ECDSA P-256 key pair; password from COSIGN_PASSWORD, else asked on the terminal',
    )
    .option('--output-key-prefix <prefix>', 'write <prefix>.key and <prefix>.pub', 'cosign')
    .option('--force', 'overwrite existing key files', false)
    .action(async (opts: { outputKeyPrefix: string; force: boolean }) => {
      const password = await cosignPassword({ confirm: true });
      const { privatePath, publicPath } = await writeKeyFiles(password, {
        prefix: opts.outputKeyPrefix,
        force: opts.force,
      });
      process.stderr.write(`Private key written to ${privatePath}\nPublic key written to ${publicPath}\n`);
    });
}
