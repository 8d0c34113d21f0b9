import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { sourceDateEpoch, VERSION } from '../../defaults.ts';
import { UsageError } from '../../errors.ts';
import { writeFileAtomic } from '../../layout/atomic.ts';
import { lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

interface VexFlags extends Partial<RegistryFlags> {
  report?: string;
  output?: string;
  explain?: string;
  author: string;
  product?: string;
  platform?: string;
}

/** Reads a file named on the command line; unreadable is exit 2 naming it. */
async function readInput(what: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new UsageError(
      'INPUT_NOT_FOUND',
      `cannot read ${what} ${JSON.stringify(file)}: ${(e as Error).message}`,
      {
        file,
      },
    );
  }
}

/**
 * `pare vex IMAGE --report FILE [-o FILE] [--explain CVE]`: decides each finding of a grype, trivy or plain-list
 * report against the image (src/vex: what its ELF files import, which packages and library files it holds, the data
 * of src/vex/data) and writes an OpenVEX 0.2.0 document; prints the summary table (stderr when the document goes to
 * stdout). `pare vex apply REPORT VEX` filters a report by a VEX document, printing what was suppressed and why.
 */
export function register(program: Command): void {
  const vex = withRegistryFlags(
    program
      .command('vex')
      .description('write OpenVEX for a scanner report, proving not_affected from what the image imports')
      .argument(
        '<image>',
        'oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, a layout directory or HOST/REPO[:TAG]',
      )
      .option(
        '--report <file>',
        '(required) grype -o json, trivy --format json, or a list of "CVE-ID PACKAGE" lines',
      )
      .option(
        '-o, --output <file>',
        'write the OpenVEX document to FILE (atomically) instead of standard output',
      )
      .option('--explain <cve>', 'print the evidence chain for CVE instead of the summary')
      .option('--author <name>', 'the document author', 'pare')
      .option('--product <purl>', 'the product purl (default pkg:oci/NAME@DIGEST of the image)')
      .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image'),
  ).action(async (image: string, flags: VexFlags) => {
    const [{ imageToTree }, { openReference, platformFlag }, vexLib] = await Promise.all([
      import('../../oci/index.ts'),
      import('../reference.ts'),
      import('../../vex/index.ts'),
    ]);
    // Not a commander requiredOption: that would be demanded of `pare vex apply` too.
    if (flags.report === undefined) throw new UsageError('USAGE', 'pare vex IMAGE needs --report FILE');
    const reportFile = flags.report;
    // Inputs first: a report that does not parse is refused before the image is read.
    const reportBytes = await readInput('report', reportFile);
    const { findings } = vexLib.parseReport(reportBytes.toString('utf8'), reportFile);
    const data = vexLib.shippedVexData();
    const timestamp = sourceDateEpoch() ?? Math.floor(Date.now() / 1000);
    const client = lazyClient({ ...flags, quiet: true });
    try {
      const opened = await openReference(image, client);
      const img = await opened.image(platformFlag(flags.platform));
      const subject = await opened.subject();
      const tree = await imageToTree(img);
      const decisions = await vexLib.vexImage(tree, findings, { name: opened.name, data });
      const ref = opened.reference;
      const product =
        flags.product ??
        (ref.transport === 'docker'
          ? vexLib.ociPurl(
              ref.ref.repository.split('/').pop()!,
              subject.digest,
              `${ref.ref.registry}/${ref.ref.repository}`,
            )
          : vexLib.ociPurl(ref.tag ?? basename(ref.path), subject.digest));
      if (flags.explain !== undefined) process.stdout.write(vexLib.renderExplain(decisions, flags.explain));
      const summary = vexLib.renderSummary(decisions);
      if (decisions.length === 0) {
        // OpenVEX needs at least one statement: an empty report has nothing to state.
        process.stderr.write(`${summary}no findings in ${reportFile}: no VEX document written\n`);
        return;
      }
      const doc = vexLib.toOpenVex(decisions, {
        product,
        imageDigest: subject.digest,
        report: reportBytes,
        author: flags.author,
        timestamp,
        tooling: `pare ${VERSION}`,
      });
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (flags.output) {
        await writeFileAtomic(flags.output, text);
        if (flags.explain === undefined) process.stdout.write(summary);
      } else {
        process.stdout.write(text);
        if (flags.explain === undefined) process.stderr.write(summary);
      }
    } finally {
      await client.close();
    }
  });
  vex
    .command('apply')
    .description(
      'filter a grype/trivy report (or a list) by an OpenVEX document, printing what was suppressed',
    )
    .argument('<report>', 'grype -o json, trivy --format json, or a list of "CVE-ID PACKAGE" lines')
    .argument('<vex>', 'an OpenVEX document (pare vex output)')
    .option(
      '-o, --output <file>',
      'write the filtered report to FILE (atomically) instead of standard output',
    )
    .action(async (report: string, vexFile: string, flags: { output?: string }) => {
      const { applyVex, parseOpenVex } = await import('../../vex/index.ts');
      const doc = parseOpenVex((await readInput('VEX', vexFile)).toString('utf8'), vexFile);
      const r = applyVex((await readInput('report', report)).toString('utf8'), report, doc);
      for (const s of r.suppressed)
        process.stderr.write(`suppressed ${s.finding.id} ${s.finding.package}: ${s.status}: ${s.why}\n`);
      process.stderr.write(`${r.suppressed.length} finding(s) suppressed, ${r.kept} kept\n`);
      if (flags.output) await writeFileAtomic(flags.output, r.text);
      else process.stdout.write(r.text);
    });
}
