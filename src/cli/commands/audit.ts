import { once } from 'node:events';
import { open, readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  type Acceptance,
  type AuditOptions,
  type AuditReport,
  auditRoot,
  auditTree,
  baselineKeys,
  checkPolicy,
  classifyImage,
  functionUsage,
  type LintConfig,
  lintImage,
  lintKey,
  lintSummary,
  type Policy,
  parseAcceptance,
  parseIgnoreFile,
  parsePolicy,
  policyNeedsCodeScan,
  renderFunctions,
  renderHtml,
  renderLint,
  renderPolicy,
  renderTable,
  renderUsers,
  summarizeImage,
  symbolUsers,
  toSarif,
  treeSize,
} from '../../audit/index.ts';
import { VERSION } from '../../defaults.ts';
import { hostRootFs } from '../../elf/index.ts';
import { UsageError } from '../../errors.ts';
import { writeFileAtomic } from '../../layout/atomic.ts';
import type { Image } from '../../oci/index.ts';
import type { TransportReference } from '../../registry/index.ts';
import { printJson, useColor } from '../format.ts';
import type { OpenedReference } from '../reference.ts';
import { type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

interface AuditFlags extends Partial<RegistryFlags> {
  json?: boolean;
  require?: string;
  uses?: string;
  functions?: boolean;
  root?: string;
  closure?: boolean;
  imports?: boolean;
  scanCode?: boolean;
  platform?: string;
  color?: boolean;
  lint?: boolean;
  accept?: string[];
  ignoreFile?: string;
  policy?: string;
  baseline?: string;
  format?: string;
  output?: string;
  /** Set from --format html: the report gets the image section. */
  html?: boolean;
}

/** Reads a file the user named for a flag; unreadable is a usage error (exit 2) naming the flag and the file. */
async function readFlagFile(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError('USAGE', `cannot read ${flag} ${JSON.stringify(file)}: ${(e as Error).message}`);
  }
}

/** The acceptances of --accept and the ignore file (--ignore-file, else ./.pareignore when it exists). */
async function acceptances(flags: AuditFlags): Promise<Acceptance[]> {
  const out = (flags.accept ?? []).map((a) => parseAcceptance(a, `--accept ${a}`));
  const file = flags.ignoreFile ?? '.pareignore';
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' && flags.ignoreFile === undefined) return undefined;
    throw new UsageError('USAGE', `cannot read the ignore file ${JSON.stringify(file)}: ${e.message}`);
  });
  if (text !== undefined) out.push(...parseIgnoreFile(text, file));
  return out;
}

/** The tag an image argument names: '' for a registry reference without tag or digest, undefined when none applies. */
function referenceTag(reference: TransportReference): string | undefined {
  if (reference.transport === 'docker') return reference.ref.digest ? undefined : (reference.ref.tag ?? '');
  return 'tag' in reference && typeof reference.tag === 'string' ? reference.tag : undefined;
}

/**
 * True when `target` is a host file or directory to audit in place: it exists and is neither an OCI layout directory
 * nor a tar archive. Everything else (transports, `PATH:TAG`, registry references) is an image for openReference.
 */
async function isHostTarget(target: string): Promise<boolean> {
  if (/^(oci|oci-archive|docker-archive):|^[a-z][a-z0-9+.-]*:\/\//.test(target)) return false;
  const st = await stat(target).catch(() => undefined);
  if (!st) return false;
  if (st.isDirectory())
    return (await stat(resolve(target, 'oci-layout')).catch(() => undefined)) === undefined;
  // Only the header of a regular file is read: a FIFO would block, and a big file need not be in memory.
  if (!st.isFile() || st.size < 262) return true;
  const fh = await open(target, 'r').catch(() => undefined);
  if (!fh) return true;
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(262), 0, 262, 0);
    // A tar has "ustar" at offset 257; an ELF or a script is audited as a file.
    return !(bytesRead === 262 && buffer.toString('latin1', 257, 262) === 'ustar');
  } finally {
    await fh.close();
  }
}

/**
 * Whether a cosign signature is stored with the image (CIS-DI-0005): a sigstore bundle referrer whose predicate is
 * cosign's signing one (cosign v3, pare sign), or the `sha256-<hex>.sig` tag (cosign v2), of the reference's manifest
 * or of the image read. Presence only: `pare verify --key` checks a signature. An archive holds no signatures.
 */
async function signatureState(
  opened: OpenedReference,
  image: Image,
): Promise<{ signed: boolean; detail: string }> {
  const t = opened.reference.transport;
  if (t !== 'docker' && t !== 'oci')
    return {
      signed: false,
      detail: `${opened.name} is an archive, which carries no signatures (store it in a registry or layout and sign it there)`,
    };
  const [{ BUNDLE_V03_MEDIA_TYPE }, { BUNDLE_PREDICATE_ANNOTATION, COSIGN_SIGN_PREDICATE, legacyTag }] =
    await Promise.all([import('../../attest/bundle.ts'), import('../../attest/cosign.ts')]);
  const store = await opened.store('look for signatures of');
  const subjects = [...new Set([(await opened.subject()).digest, await image.digest()])];
  for (const d of subjects) {
    const refs = await store.listReferrers(d);
    if (
      refs.some(
        (r) =>
          r.artifactType === BUNDLE_V03_MEDIA_TYPE &&
          (r.annotations?.[BUNDLE_PREDICATE_ANNOTATION] ?? COSIGN_SIGN_PREDICATE) === COSIGN_SIGN_PREDICATE,
      )
    )
      return { signed: true, detail: `a sigstore bundle referrer of ${d} in ${store.name}` };
    if (await store.getManifest(legacyTag(d, 'sig')))
      return { signed: true, detail: `the ${legacyTag(d, 'sig')} tag in ${store.name}` };
  }
  return {
    signed: false,
    detail: `no sigstore bundle referrer and no ${legacyTag(subjects[0]!, 'sig')} tag in ${store.name}`,
  };
}

/** Runs the audit a CLI target names, then the --policy gate. */
async function runAudit(target: string, flags: AuditFlags): Promise<AuditReport> {
  // Inputs are read (and refused) before the image is.
  const policy = flags.policy
    ? parsePolicy(await readFlagFile('--policy', flags.policy), flags.policy)
    : undefined;
  const baseline = flags.baseline
    ? baselineKeys(await readFlagFile('--baseline', flags.baseline), flags.baseline)
    : undefined;
  if (baseline && !policy) throw new UsageError('USAGE', '--baseline needs --policy');
  const { report, size } = await auditTarget(target, flags, policy, baseline);
  if (!policy) return report;
  return { ...report, policy: checkPolicy(policy, flags.policy!, report, size, baseline) };
}

/** The audit of a target, and its unpacked size (an image's files, for maxSize; 0 for host paths). */
async function auditTarget(
  target: string,
  flags: AuditFlags,
  policy: Policy | undefined,
  baseline: ReadonlySet<string> | undefined,
): Promise<{ report: AuditReport; size: number }> {
  // The table has no stack-clash column: the code scan (the one step that reads whole code segments) runs only when
  // its answer is printed (--json report) or gated (--require stack-clash).
  const wanted =
    (flags.json === true && flags.uses === undefined && flags.functions !== true) ||
    (flags.require ?? '').split(',').some((r) => r.trim() === 'stack-clash');
  // Likewise imported symbols and package owners: only the JSON report and --uses print them.
  const table =
    flags.json !== true && flags.html !== true && flags.uses === undefined && flags.functions !== true;
  const options: AuditOptions = {
    ...(flags.require ? { require: flags.require } : {}),
    closure: flags.closure !== false,
    // The HTML report shows packages but not imported functions.
    imports:
      flags.imports !== false &&
      (flags.json === true || flags.uses !== undefined || flags.functions === true),
    packages: !table,
    scanCode: flags.scanCode !== false && (wanted || (policy !== undefined && policyNeedsCodeScan(policy))),
  };
  if (policy?.maxSize !== undefined && (await isHostTarget(target)))
    throw new UsageError('USAGE', `${flags.policy}: maxSize needs an image target, not a host path`);
  const accepts = await acceptances(flags);
  if (!(await isHostTarget(target))) {
    // Loaded only for image targets: the image readers and the registry client cost more start-up time than
    // auditing a small directory.
    const [{ imageToTree }, { openReference, platformFlag }, { lazyClient }] = await Promise.all([
      import('../../oci/index.ts'),
      import('../reference.ts'),
      import('../registry-flags.ts'),
    ]);
    const platform = platformFlag(flags.platform);
    const client = lazyClient({ ...flags, quiet: true });
    try {
      const opened = await openReference(target, client);
      const image = await opened.image(platform);
      const origins = new Map<string, string>();
      const tree = await imageToTree(image, { origins });
      const audited = await auditTree(tree, { ...options, name: target });
      // Only a maxSize policy reads the unpacked size (a walk of every entry: ~50 ms for 1,245 files).
      const size = policy?.maxSize !== undefined ? treeSize(tree) : 0;
      // Layers and size by package and directory: printed by the JSON and HTML reports only.
      const report =
        flags.json === true || flags.html === true
          ? { ...audited, image: await summarizeImage(image, tree, origins) }
          : audited;
      if (flags.lint === false) return { report, size };
      // The run config as the image has it, Docker's Healthcheck included (the parsed RunConfig omits it).
      const raw = JSON.parse(Buffer.from(await image.rawConfig()).toString('utf8')) as {
        config?: LintConfig;
        created?: unknown;
      };
      const config = raw.config ?? undefined;
      const tag = referenceTag(opened.reference);
      // The build date SOURCE_DATE_EPOCH sets (0 when the config has none, as an unset SOURCE_DATE_EPOCH means).
      const createdMs = typeof raw.created === 'string' ? Date.parse(raw.created) : 0;
      const linted = await lintImage(
        {
          tree,
          config,
          origins,
          ...(tag !== undefined ? { tag } : {}),
          signature: await signatureState(opened, image),
          created: Number.isFinite(createdMs) ? Math.floor(createdMs / 1000) : 0,
        },
        accepts,
      );
      // A finding the baseline report already had is accepted: CI fails only on new ones.
      const findings = baseline
        ? linted.map((f) =>
            baseline.has(lintKey(f.name, f.evidence.path, f.evidence.key)) ? { ...f, accepted: true } : f,
          )
        : linted;
      return {
        report: {
          ...report,
          lint: { findings, summary: lintSummary(findings) },
          classification: await classifyImage(tree, config, report.files),
        },
        size,
      };
    } finally {
      await client.close();
    }
  }
  const abs = resolve(target);
  const root = resolve(flags.root ?? '/');
  const rel = relative(root, abs);
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new UsageError(
      'USAGE',
      `cannot audit ${JSON.stringify(target)}: it is outside the root ${JSON.stringify(root)} (see --root)`,
    );
  return { report: await auditRoot(hostRootFs(root), { ...options, paths: [`/${rel}`] }), size: 0 };
}

/** The table, then the lint, classification and policy sections when the report has them. */
function renderText(report: AuditReport, color: boolean): string {
  let out = renderTable(report, { color });
  if (report.lint && report.classification)
    out += renderLint(report.lint.findings, report.classification, { color });
  if (report.policy) out += renderPolicy(report.policy, { color });
  return out;
}

/**
 * Yields `JSON.stringify(report, null, 2)` plus a newline, file by file: the same bytes as printJson, without
 * building one string of the whole report (17 MiB for /usr/bin, and twice that while it is built and written).
 */
export function* reportJson(report: AuditReport): Generator<string> {
  // Each piece is stringified inside a wrapper of the depth it has in the report, so JSON.stringify indents it, and
  // the wrapper's fixed first and last lines are cut off.
  const PRE = '{\n  "files": [\n';
  const POST = '\n  ]\n}';
  const entries = Object.entries(report).filter(([, v]) => v !== undefined && typeof v !== 'function');
  yield '{\n';
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i]!;
    const sep = i < entries.length - 1 ? ',' : '';
    if (k === 'files' && Array.isArray(v) && v.length > 0) {
      yield `  ${JSON.stringify(k)}: [\n`;
      for (let j = 0; j < v.length; j++) {
        const s = JSON.stringify({ files: [v[j]] }, null, 2);
        yield `${s.slice(PRE.length, s.length - POST.length)}${j < v.length - 1 ? ',' : ''}\n`;
      }
      yield `  ]${sep}\n`;
    } else {
      const s = JSON.stringify({ [k]: v }, null, 2);
      yield `${s.slice(2, s.length - 2)}${sep}\n`;
    }
  }
  yield '}\n';
}

/**
 * `pare audit TARGET`: hardening (checksec columns), library closure and imported functions of every ELF file in a
 * directory, a single file, or an image (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, an OCI layout
 * directory or an image tar); an image is also linted and classified (src/audit/lint.ts, classify.ts). Exit 1 when
 * `--require` is violated, a file could not be checked against it, or a fatal lint finding is not accepted; exit 2
 * when the target named is not ELF (a script, an ar archive, an empty file) or not there.
 */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('audit')
      .description('audit ELF hardening, library closure and function usage of a directory, file or image')
      .argument(
        '<target>',
        'directory, file, or image (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, [docker://]HOST/REPO[:TAG])',
      )
      .option(
        '--json',
        'print the pare.audit/v2 JSON report (see src/audit/README.md); same as --format json',
      )
      .option(
        '--format <format>',
        'table (default), json, sarif (SARIF 2.1.0, for code scanning) or html (one self-contained file)',
      )
      .option('-o, --output <file>', 'write the report to FILE (atomically) instead of standard output')
      .option(
        '--require <spec>',
        'fail (exit 1) unless every file is read and meets e.g. relro=full,pie,nx,canary',
      )
      .option('--uses <symbol>', 'list the binaries that use SYMBOL[@VERSION] and which library provides it')
      .option(
        '--functions',
        'per library, which of its functions are imported and by which files (and per package; static binaries from .symtab)',
      )
      .option('--root <dir>', 'root filesystem for library resolution of host paths (default /)')
      .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image')
      .option('--no-closure', 'skip library resolution (and function usage)')
      .option('--no-imports', 'skip function usage')
      .option(
        '--no-scan-code',
        'do not scan code for stack-clash probes (the table skips it anyway unless --require stack-clash)',
      )
      .option('--no-lint', 'skip image lint and classification')
      .option(
        '--accept <rule[:path]>',
        'accept lint findings of RULE (id or short name), optionally only at paths matching a glob (repeatable)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option(
        '--ignore-file <file>',
        'file of accepted findings, one RULE[:PATH] per line (default ./.pareignore)',
      )
      .option(
        '--policy <file>',
        'fail (exit 1) on violations of a YAML policy: require, overrides, deny, classes, maxSize',
      )
      .option(
        '--baseline <file>',
        'a previous pare audit --json report: its violations and findings are accepted',
      )
      .option('--color', 'force colours')
      .option('--no-color', 'no colours'),
  ).action(async (target: string, flags: AuditFlags) => {
    const format = flags.format ?? (flags.json ? 'json' : 'table');
    if (!['table', 'json', 'sarif', 'html'].includes(format))
      throw new UsageError('USAGE', `--format ${JSON.stringify(format)}: want table, json, sarif or html`);
    if (flags.json && format !== 'json')
      throw new UsageError('USAGE', `--json and --format ${format} ask for two formats: keep one`);
    // --json and --format json are one thing from here on (the JSON report includes what the table skips).
    if (format === 'json') flags.json = true;
    if (format === 'html') flags.html = true;
    if (flags.functions && flags.uses)
      throw new UsageError('USAGE', '--functions and --uses are two reports: keep one');
    if (flags.functions && flags.imports === false)
      throw new UsageError('USAGE', '--functions needs the imports that --no-imports skips: keep one');
    if (flags.functions && !['table', 'json'].includes(format))
      throw new UsageError('USAGE', `--functions prints a table or JSON, not --format ${format}`);
    const report = await runAudit(target, flags);
    const color = flags.output ? false : (flags.color ?? useColor());
    if (flags.functions) {
      const usage = functionUsage(report);
      const text = flags.json ? `${JSON.stringify(usage, null, 2)}\n` : renderFunctions(usage);
      if (flags.output) await writeFileAtomic(flags.output, text);
      else process.stdout.write(text);
    } else if (flags.uses) {
      const users = symbolUsers(report, flags.uses);
      if (flags.json) printJson({ schema: 'pare.audit.uses/v1', symbol: flags.uses, users });
      else process.stdout.write(renderUsers(users));
    } else if (format === 'sarif' || format === 'html' || flags.output) {
      const text =
        format === 'sarif'
          ? `${JSON.stringify(toSarif(report, VERSION), null, 2)}\n`
          : format === 'html'
            ? renderHtml(report)
            : format === 'json'
              ? [...reportJson(report)].join('')
              : renderText(report, color);
      if (flags.output) await writeFileAtomic(flags.output, text);
      else process.stdout.write(text);
    } else if (flags.json) {
      // Wait for the pipe to drain when it is full: otherwise a slow reader makes Node queue the whole report.
      for (const chunk of reportJson(report)) {
        if (process.stdout.write(chunk)) continue;
        try {
          await once(process.stdout, 'drain');
        } catch (e) {
          // The reader went away (`pare audit --json | head`): stop writing, as other tools do.
          if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
          throw e;
        }
      }
    } else process.stdout.write(renderText(report, color));
    // A file the gate could not read fails it (summary.passed), as a violation does; so does a fatal lint finding
    // that was not accepted.
    if (
      report.summary.passed === false ||
      report.lint?.summary.passed === false ||
      report.policy?.passed === false
    )
      process.exitCode = 1;
  });
}
