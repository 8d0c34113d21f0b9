import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Finds real peer tools (skopeo, umoci, bwrap, registry, checksec, cosign, crane, …) for integration tests.
 *
 * `peer(name)` returns the absolute path, or undefined when absent. `describePeer`/`itPeer` style helpers are not
 * needed: call `requirePeer(ctx, name)` inside a test (or `peerOrSkip` at module level) — when the tool is missing
 * the test is skipped with a printed reason, except when PARE_REQUIRE_PEERS=1 (CI), where a missing peer fails.
 */

const ALIASES: Record<string, string[]> = { registry: ['registry', 'docker-registry'] };

const cache = new Map<string, string | undefined>();

/** Returns the absolute path of a peer tool on PATH (or a known alias), or undefined. */
export function peer(name: string): string | undefined {
  if (cache.has(name)) return cache.get(name);
  let found: string | undefined;
  for (const candidate of ALIASES[name] ?? [name]) {
    for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
      const p = join(dir, candidate);
      try {
        accessSync(p, constants.X_OK);
        found = p;
        break;
      } catch {
        /* keep looking */
      }
    }
    if (found) break;
  }
  cache.set(name, found);
  return found;
}

/** True when CI demands every peer (PARE_REQUIRE_PEERS=1). */
export const peersRequired = process.env.PARE_REQUIRE_PEERS === '1';

/**
 * Returns `{ skip: false, paths }` when all tools are present; otherwise prints why and returns `{ skip: true }`,
 * or throws when PARE_REQUIRE_PEERS=1. Use at module level: `const p = peersOrSkip('skopeo'); describe.skipIf(p.skip)…`.
 */
export function peersOrSkip(...names: string[]): {
  skip: boolean;
  paths: Record<string, string>;
  reason: string;
} {
  const paths: Record<string, string> = {};
  const missing: string[] = [];
  for (const n of names) {
    const p = peer(n);
    if (p) paths[n] = p;
    else missing.push(n);
  }
  if (missing.length === 0) return { skip: false, paths, reason: '' };
  const reason = `peer tool(s) not installed: ${missing.join(', ')} (run: sudo bash ../shared/peers/install-peers.sh)`;
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
  return { skip: true, paths, reason };
}

/** True when we run as root (some peers, e.g. bwrap without user namespaces, need it). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Runs a peer and returns stdout; throws with stderr included on failure. */
export function runPeer(
  path: string,
  args: string[],
  options: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {},
): string {
  try {
    return execFileSync(path, args, {
      cwd: options.cwd,
      input: options.input,
      env: options.env ?? process.env,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `${path} ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}${err.stdout ?? ''}`,
    );
  }
}
