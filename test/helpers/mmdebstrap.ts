import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Images pare did not build: a Debian root made by mmdebstrap, packed into an OCI layout by umoci (`raw add-layer`,
 * then `config`). The mirror is the host's apt sources (no host name in the repo). Each layout is cached in
 * `$TMPDIR/pare-test-mmdebstrap/<key>` (mmdebstrap takes 10–60 s): TMPDIR is the test file's own
 * (test/helpers/setup-tmp.ts), so one build serves every test of the file.
 */

/** The host's apt sources file to give mmdebstrap as its mirror, or undefined when there is none. */
export function hostAptSources(): string | undefined {
  const d = '/etc/apt/sources.list.d';
  const deb822 = existsSync(d)
    ? readdirSync(d)
        .filter((f) => f.endsWith('.sources'))
        .sort()
        .map((f) => join(d, f))
    : [];
  if (deb822.length > 0) return deb822[0];
  return existsSync('/etc/apt/sources.list') ? '/etc/apt/sources.list' : undefined;
}

export interface DebianImageSpec {
  readonly suite?: string;
  readonly variant?: string;
  readonly include?: readonly string[];
  /** `umoci config` flags, e.g. `--config.cmd=python3`. */
  readonly config?: readonly string[];
}

/** Returns `oci:DIR:base` of a cached mmdebstrap + umoci image (built now when missing). */
export function debianImage(
  tools: { mmdebstrap: string; umoci: string },
  spec: DebianImageSpec,
): { layout: string; ref: string } {
  const sources = hostAptSources();
  if (!sources) throw new Error('no apt sources on this host: mmdebstrap has no mirror to use');
  const args = [
    `--variant=${spec.variant ?? 'apt'}`,
    ...(spec.include?.length ? [`--include=${spec.include.join(',')}`] : []),
    '--format=tar',
    spec.suite ?? 'bookworm',
  ];
  const key = createHash('sha256')
    .update(JSON.stringify({ args, config: spec.config ?? [], v: 1 }))
    .digest('hex')
    .slice(0, 16);
  const cache = join(process.env.TMPDIR ?? tmpdir(), 'pare-test-mmdebstrap');
  const layout = join(cache, key);
  if (!existsSync(join(layout, 'index.json'))) {
    mkdirSync(cache, { recursive: true });
    const work = join(cache, `${key}.tmp-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    const tar = join(work, 'root.tar');
    execFileSync(tools.mmdebstrap, ['--quiet', ...args, tar, sources], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const oci = join(work, 'oci');
    execFileSync(tools.umoci, ['init', '--layout', oci]);
    execFileSync(tools.umoci, ['new', '--image', `${oci}:base`]);
    execFileSync(tools.umoci, ['raw', 'add-layer', '--image', `${oci}:base`, tar]);
    if (spec.config?.length) execFileSync(tools.umoci, ['config', '--image', `${oci}:base`, ...spec.config]);
    rmSync(layout, { recursive: true, force: true });
    renameSync(oci, layout);
    rmSync(work, { recursive: true, force: true });
  }
  return { layout, ref: `oci:${layout}:base` };
}
