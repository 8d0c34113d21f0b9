import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { type ProvenanceInput, provenanceStatement } from '../../attest/index.ts';
import { sourceDateEpoch } from '../../defaults.ts';
import { UsageError } from '../../errors.ts';
import { writeFileAtomic } from '../../layout/index.ts';

/**
 * `pare provenance --input BUILD.json [-o FILE]`: the in-toto Statement v1 with the SLSA Provenance v1 predicate of a
 * pare build, from the build's record of what it used (a `ProvenanceInput` JSON: subjects, pare.yaml digest,
 * platforms, every .deb and InRelease, every app file). Deterministic: same input, same bytes.
 */
export function register(program: Command): void {
  program
    .command('provenance')
    .description('write the SLSA v1 provenance statement of a build')
    .requiredOption('--input <file>', 'the build record (ProvenanceInput JSON written by pare build)')
    .option('-o, --output <file>', 'write here (atomically) instead of stdout')
    .action(async (opts: { input: string; output?: string }) => {
      let input: ProvenanceInput;
      try {
        input = JSON.parse(await readFile(opts.input, 'utf8')) as ProvenanceInput;
      } catch (cause) {
        throw new UsageError(
          'INPUT_INVALID',
          `cannot read build record ${JSON.stringify(opts.input)}: ${(cause as Error).message}`,
          {
            cause,
            file: opts.input,
          },
        );
      }
      for (const field of [
        'subjects',
        'config',
        'platforms',
        'debs',
        'releases',
        'appFiles',
        'pareVersion',
      ] as const)
        if (input[field] === undefined)
          throw new UsageError(
            'INPUT_INVALID',
            `cannot read build record ${JSON.stringify(opts.input)}: field "${field}" is missing`,
            {
              file: opts.input,
            },
          );
      const sde = sourceDateEpoch();
      const withTime =
        input.sourceDateEpoch === undefined && sde !== undefined ? { ...input, sourceDateEpoch: sde } : input;
      const text = `${JSON.stringify(provenanceStatement(withTime), null, 2)}\n`;
      if (opts.output) await writeFileAtomic(opts.output, text);
      else process.stdout.write(text);
    });
}
