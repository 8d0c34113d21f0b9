import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { SliceError, UsageError } from '../../errors.ts';
import type { Tree } from '../../fstree/index.ts';
import { exists } from '../../layout/atomic.ts';
import { type Image, imageToTree, type RunConfig } from '../../oci/index.ts';
import {
  formatWhyKept,
  parseSliceReport,
  type SliceOptions,
  type SliceReport,
  sliceReport,
  sliceTree,
  straceProber,
} from '../../slice/index.ts';
import {
  HTTP_PROBES_ANNOTATION,
  type HttpProbe,
  PROBES_ANNOTATION,
  parseHttpProbe,
  probeContext,
  resolveHttpPorts,
  withHttpProbes,
} from '../../slim/index.ts';
import { printJson } from '../format.ts';
import { openReference, platformFlag } from '../reference.ts';
import { collect, lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/** The file name a build stores its slice report under (next to the project or the layout). */
export const SLICE_REPORT_FILE = 'slice-report.json';

interface Opts extends Partial<RegistryFlags> {
  platform?: string;
  report?: string;
  entrypoint?: string;
  cmd?: string[];
  executable?: string[];
  keep?: string[];
  shell?: boolean;
  locale?: string[];
  json?: boolean;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function readReport(file: string): Promise<SliceReport> {
  return parseSliceReport(await readFile(file, 'utf8'), file);
}

/**
 * Returns the slice report for `source`: a report file, a directory holding `slice-report.json` (a project or a
 * layout, or its parent), or an image that is sliced again here with its own Entrypoint/Cmd/Env/WorkingDir (the
 * roots can be overridden with the options).
 */
async function reportFor(source: string, o: Opts): Promise<SliceReport> {
  if (o.report) return readReport(o.report);
  if (source.endsWith('.json') && (await exists(source))) return readReport(source);
  if (await isDir(source)) {
    for (const c of [join(source, SLICE_REPORT_FILE), join(dirname(source), SLICE_REPORT_FILE)])
      if (await exists(c)) return readReport(c);
    if (await exists(join(source, 'pare.yaml')))
      throw new UsageError(
        'INPUT_NOT_FOUND',
        `cannot explain: ${JSON.stringify(source)} has no ${SLICE_REPORT_FILE} yet; run pare build there first, or name an image`,
      );
  }
  const platform = platformFlag(o.platform);
  const client = lazyClient({ ...o, quiet: true });
  try {
    return await sliceImage(await (await openReference(source, client)).image(platform), o);
  } finally {
    await client.close();
  }
}

/** The probes of a `pare slim` result (its PROBES_ANNOTATION, a JSON array of argv lists). Throws SLICE_REPORT_INVALID. */
function slimProbes(text: string | undefined): string[][] {
  if (text === undefined) return [];
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (
    !Array.isArray(v) ||
    !v.every((a) => Array.isArray(a) && a.length > 0 && a.every((w) => typeof w === 'string'))
  )
    throw new SliceError(
      'SLICE_REPORT_INVALID',
      `cannot explain: the image's annotation ${PROBES_ANNOTATION} is not a JSON array of argv lists: ${JSON.stringify(text.slice(0, 200))}`,
    );
  return v as string[][];
}

/** The probes as `pare slim` ran them: its user, env and working directory (src/slim probeContext), HTTP probes too. */
async function slimProbeOptions(
  tree: Tree,
  config: RunConfig,
  probes: readonly string[][],
  http: readonly Required<HttpProbe>[],
): Promise<Partial<SliceOptions>> {
  const c = await probeContext(tree, config);
  const probeOptions = { uid: c.user.uid, gid: c.user.gid };
  const { commands, prober } = withHttpProbes(straceProber(probeOptions), probes, http, {
    config,
    user: c.user,
    timeoutMs: 120_000,
  });
  return { env: c.env, workingDir: c.cwd, probe: commands, prober, probeOptions };
}

/** The HTTP probes of a `pare slim` result (its HTTP_PROBES_ANNOTATION). Throws SLICE_REPORT_INVALID. */
function slimHttpProbes(text: string | undefined, config: RunConfig): Required<HttpProbe>[] {
  if (text === undefined) return [];
  let specs: unknown;
  try {
    specs = JSON.parse(text);
    if (!Array.isArray(specs) || !specs.every((x) => typeof x === 'string')) throw new Error('not strings');
    return resolveHttpPorts(specs.map(parseHttpProbe), config);
  } catch (cause) {
    throw new SliceError(
      'SLICE_REPORT_INVALID',
      `cannot explain: the image's annotation ${HTTP_PROBES_ANNOTATION} is not a JSON array of [PORT][/PATH]: ${JSON.stringify(text.slice(0, 200))}`,
      { cause },
    );
  }
}

/** Slices `image` again from its own Entrypoint/Cmd/Env/WorkingDir, or the roots the options name. */
async function sliceImage(image: Image, o: Opts): Promise<SliceReport> {
  const config = (await image.config()).config ?? {};
  // A `pare slim` result names its probes: run them again so what they touched is explained by them.
  const annotations = (await image.manifest()).annotations ?? {};
  const probes = slimProbes(annotations[PROBES_ANNOTATION]);
  const http = slimHttpProbes(annotations[HTTP_PROBES_ANNOTATION], config);
  const tree = await imageToTree(image);
  const options: SliceOptions = {
    ...(o.entrypoint !== undefined
      ? { entrypoint: o.entrypoint === '' ? [] : [o.entrypoint], cmd: o.cmd ?? [] }
      : { entrypoint: config.Entrypoint ?? [], cmd: o.cmd ?? config.Cmd ?? [] }),
    env: config.Env ?? [],
    ...(config.WorkingDir ? { workingDir: config.WorkingDir } : {}),
    executables: o.executable ?? [],
    keep: o.keep ?? [],
    shell: o.shell ?? false,
    locales: o.locale ?? [],
    ...(probes.length > 0 || http.length > 0 ? await slimProbeOptions(tree, config, probes, http) : {}),
  };
  return sliceReport(await sliceTree(tree, options));
}

/** `pare why-kept PATH [SOURCE]`: the chain of reasons from a root (entrypoint, executable, glob) to a kept file. */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('why-kept')
      .description(
        'explain why a file is in a sliced image: the chain from a root (entrypoint, executable, keep glob, probe) to it',
      )
      .argument('<path>', 'absolute path inside the image')
      .argument(
        '[source]',
        `a project or layout directory with ${SLICE_REPORT_FILE}, a report file, or an image (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, [docker://]HOST/REPO[:TAG])`,
        '.',
      )
      .option('--report <file>', 'read this slice report')
      .option('--entrypoint <cmd>', "slice an image from this command instead of the image's Entrypoint")
      .option('--cmd <arg>', 'an argument (repeatable), replaces the Cmd', collect)
      .option('--executable <name>', 'another root program (repeatable)', collect)
      .option('--keep <glob>', 'a path glob to keep (repeatable)', collect)
      .option('--locale <name>', 'a locale to keep (repeatable)', collect)
      .option('--shell', 'keep shells and package-manager tooling')
      .option('--platform <os/arch[/variant]>', 'the image of an index to slice (default: this host)')
      .option('--json', 'print the reasons as JSON'),
  ).action(async (path: string, source: string, o: Opts) => {
    if (!path.startsWith('/'))
      throw new UsageError(
        'USAGE',
        `cannot explain ${JSON.stringify(path)}: want an absolute path in the image`,
      );
    const report = await reportFor(source, o);
    if (o.json) {
      const chain: { path: string; why: string; from?: string; detail?: string }[] = [];
      const seen = new Set<string>();
      for (let p: string | undefined = path; p && report.kept[p] && !seen.has(p); p = report.kept[p]!.from) {
        seen.add(p);
        chain.push({ path: p, ...report.kept[p]! });
      }
      const dropped = report.dropped?.[path];
      printJson({ path, kept: chain.length > 0, chain, ...(dropped ? { dropped } : {}) });
    } else process.stdout.write(formatWhyKept(report, path));
    const text = formatWhyKept(report, path);
    if (!report.kept[path] && (!text.includes('←') || text.includes(': dropped by slice.drop')))
      process.exitCode = 1;
  });
}
