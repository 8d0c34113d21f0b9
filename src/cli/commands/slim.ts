import type { Command } from 'commander';
import { resolveEpoch } from '../../build/index.ts';
import { UsageError } from '../../errors.ts';
import { writeFileAtomic } from '../../layout/index.ts';
import { writeSink } from '../../registry/index.ts';
import { sliceReport } from '../../slice/index.ts';
import { parseHttpProbe, type SlimResult, slimImage, splitCommand } from '../../slim/index.ts';
import { formatBytes, printJson, table } from '../format.ts';
import { openReference, parseImageArgument, platformFlag } from '../reference.ts';
import { collect, lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

interface Opts extends RegistryFlags {
  probe?: string[];
  httpProbe?: string[];
  executable?: string[];
  keep?: string[];
  drop?: string[];
  includeShell?: boolean;
  locale?: string[];
  probeTimeout?: string;
  report?: string;
  platform?: string;
  json?: boolean;
}

/** The JSON report of `pare slim --json` (`pare.slim/v1`). */
async function report(r: SlimResult, written: string) {
  const after = await r.image.manifest();
  return {
    schema: 'pare.slim/v1',
    source: { digest: r.source.digest, compressed: r.source.compressed, layers: r.source.layers },
    digest: written,
    compressed: after.layers.reduce((n, l) => n + l.size, 0),
    /** Per source layer: compressed size, files and bytes it provided before and what of them is left. */
    layers: r.layers,
    files: { before: r.slice.before.files, after: r.slice.after.files },
    bytes: { before: r.slice.before.bytes, after: r.slice.after.bytes },
    kept: r.slice.kept.size,
    dropped: r.slice.before.files - r.slice.after.files,
    probes: r.probes,
    packages: r.packages,
    notes: r.slice.notes,
  };
}

function printText(j: Awaited<ReturnType<typeof report>>): void {
  const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
  const rows: string[][] = [['package', 'files', 'bytes']];
  for (const p of j.packages)
    rows.push([
      p.kept ? p.name : `${p.name} (removed)`,
      `${p.filesBefore} → ${p.filesAfter}`,
      `${formatBytes(p.bytesBefore)} → ${formatBytes(p.bytesAfter)}`,
    ]);
  const out = process.stderr;
  if (j.packages.length > 0) out.write(`${table(rows)}\n`);
  const layerRows: string[][] = [['source layer', 'compressed', 'files', 'bytes']];
  for (const l of j.layers)
    layerRows.push([
      l.digest.slice(0, 19),
      formatBytes(l.compressed),
      `${l.filesBefore} → ${l.filesAfter}`,
      `${formatBytes(l.bytesBefore)} → ${formatBytes(l.bytesAfter)}`,
    ]);
  out.write(`${table(layerRows)}\n`);
  out.write(
    `files ${j.files.before} → ${j.files.after} (${j.dropped} dropped), bytes ${formatBytes(j.bytes.before)} → ${formatBytes(j.bytes.after)}; compressed ${formatBytes(j.source.compressed)} in ${j.source.layers.length} layer(s) → ${formatBytes(j.compressed)} in 1 (${pct(j.compressed, j.source.compressed)})\n`,
  );
  // A probe run by Python touches every bytecode cache it loads; one line says they went (Python reads the sources).
  const pyc = j.notes.filter((n) => / \(Python bytecode cache\), needed by /.test(n));
  for (const n of j.notes) if (!pyc.includes(n)) out.write(`pare: note: ${n}\n`);
  if (pyc.length > 0)
    out.write(
      `pare: note: dropped ${pyc.length} Python bytecode cache(s) the probes read (Python compiles the kept sources)\n`,
    );
  process.stdout.write(`${j.digest}\n`);
}

/** `pare slim SRC DST`: any image → the minimal image that still passes its probes (src/slim). */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('slim')
      .description(
        'make a minimal copy of any image: keep what its entrypoint, executables and probes need, check the copy passes the same probes, then write it',
      )
      .argument(
        '<src>',
        'docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE',
      )
      .argument('<dst>', 'same forms as <src> (a bare path that does not exist yet: write oci:DIR)')
      .option(
        '--probe <command>',
        'a command to run in the image under strace (repeatable; quoted words as a shell splits them, no shell runs it); what it touches is kept, and the result must pass it too',
        collect,
      )
      .option(
        '--http-probe <[port][/path]>',
        "start the image's entrypoint with the port published, GET the path (default /) once the port listens, stop it with the image's StopSignal (repeatable; default port: the image's only exposed TCP port); what the server touches is kept, and the result must answer the same status",
        collect,
      )
      .option('--executable <name>', 'another root program (repeatable)', collect)
      .option('--keep <glob>', 'a path glob to keep (repeatable; a directory keeps its subtree)', collect)
      .option('--drop <glob>', 'a path glob to remove whatever needs it (repeatable)', collect)
      .option('--include-shell', 'keep /bin/sh, shells and package-manager tooling')
      .option('--locale <name>', 'a locale to keep (repeatable)', collect)
      .option('--probe-timeout <seconds>', 'longest a probe may run', '120')
      .option(
        '--report <file>',
        'write the slice report (pare.slice/v1: why each path was kept, with the probe that touched it) for pare why-kept PATH FILE',
      )
      .option('--platform <os/arch[/variant]>', 'the image of an index to slim (default: this host)')
      .option('--json', 'print the report as JSON on stdout'),
  ).action(async (src: string, dst: string, o: Opts) => {
    const timeout = Number(o.probeTimeout);
    if (!/^\d+$/.test(o.probeTimeout ?? '') || timeout < 1)
      throw new UsageError(
        'USAGE',
        `cannot use --probe-timeout ${JSON.stringify(o.probeTimeout)}: want whole seconds, at least 1`,
      );
    const probes = (o.probe ?? []).map((p) => splitCommand(p, '--probe'));
    const httpProbes = (o.httpProbe ?? []).map(parseHttpProbe);
    const platform = platformFlag(o.platform);
    const sink = await parseImageArgument(dst);
    const client = lazyClient(o);
    try {
      const image = await (await openReference(src, client)).image(platform);
      const epoch = resolveEpoch(undefined, undefined, undefined);
      const r = await slimImage(image, {
        probes,
        httpProbes,
        executables: o.executable ?? [],
        keep: o.keep ?? [],
        drop: o.drop ?? [],
        shell: o.includeShell ?? false,
        locales: o.locale ?? [],
        probeTimeoutMs: timeout * 1000,
        ...(epoch !== undefined ? { epoch } : {}),
      });
      const written = await writeSink(await client.get(), sink, { kind: 'image', image: r.image });
      if (o.report) await writeFileAtomic(o.report, `${JSON.stringify(sliceReport(r.slice), null, 2)}\n`);
      const j = await report(r, written.digest);
      if (o.json) printJson(j);
      else printText(j);
    } finally {
      await client.close();
    }
  });
}
