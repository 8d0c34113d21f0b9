import type { Command } from 'commander';
import { writeKeyFiles } from '../../attest/index.ts';
import { UsageError } from '../../errors.ts';

/**
 * `pare key generate`: a cosign-compatible key pair (`<prefix>.key` in cosign's encrypted format, `<prefix>.pub`).
 * The password comes from COSIGN_PASSWORD, as cosign reads it (an empty value means no password).
 */
export function register(program: Command): void {
  const key = program.command('key').description('manage signing keys (cosign-compatible)');
  key
    .command('generate')
    .description('generate an ECDSA P-256 key pair; password from COSIGN_PASSWORD')
    .option('--output-key-prefix <prefix>', 'write <prefix>.key and <prefix>.pub', 'cosign')
    .option('--force', 'overwrite existing key files', false)
    .action(async (opts: { outputKeyPrefix: string; force: boolean }) => {
      const password = cosignPassword();
      const { privatePath, publicPath } = await writeKeyFiles(password, {
        prefix: opts.outputKeyPrefix,
        force: opts.force,
      });
      process.stderr.write(`Private key written to ${privatePath}\nPublic key written to ${publicPath}\n`);
    });
}

/** Returns COSIGN_PASSWORD; throws a UsageError saying how to set it when it is unset. */
export function cosignPassword(): string {
  const pw = process.env.COSIGN_PASSWORD;
  if (pw === undefined)
    throw new UsageError(
      'USAGE',
      'cannot use an encrypted key: COSIGN_PASSWORD is not set (export COSIGN_PASSWORD=…; an empty value means no password)',
    );
  return pw;
}
