import { spawn, spawnSync } from 'node:child_process';
import { lzma, xz } from '@napi-rs/lzma';
import { DebianError } from '../errors.ts';

/**
 * xz decompression as a stream. Prefers the system `xz` (xz-utils is Priority: required in Debian, so it is on
 * every Debian host): it streams, runs beside Node on another core, and is about 3.5× faster here than
 * @napi-rs/lzma, which decodes a whole buffer at once. Falls back to the library when `xz` is absent
 * (PARE_XZ=library forces the fallback, for tests). The bytes are the same either way: both are liblzma.
 */

let systemXz: boolean | undefined;
function haveSystemXz(): boolean {
  if (process.env.PARE_XZ === 'library') return false;
  systemXz ??= spawnSync('xz', ['--version'], { stdio: 'ignore' }).status === 0;
  return systemXz;
}

/**
 * Yields the decompressed bytes of an xz (or legacy lzma, `format: 'lzma'`) stream; throws DEBIAN_DEB_INVALID
 * naming `what` when the data is corrupt. The system `xz` streams, so the caller bounds memory by how much it reads;
 * the in-process library decodes the whole input at once, so it is used only for `small` inputs (the caller's
 * promise that the compressed size bounds the output) or when there is no `xz` on the host.
 */
export async function* xzDecompress(
  source: AsyncIterable<Uint8Array>,
  what: string,
  options: { small?: boolean; format?: 'xz' | 'lzma' } = {},
): AsyncGenerator<Uint8Array> {
  const format = options.format ?? 'xz';
  // A process start costs more than decoding a few KiB in-process (control.tar is tiny).
  if (options.small || !haveSystemXz()) {
    const parts: Uint8Array[] = [];
    for await (const c of source) parts.push(c);
    try {
      const input = Buffer.concat(parts);
      yield await (format === 'lzma' ? lzma.decompress(input) : xz.decompress(input));
    } catch (e) {
      throw new DebianError('DEBIAN_DEB_INVALID', `cannot decompress ${what}: ${(e as Error).message}`, {
        cause: e,
        path: what,
      });
    }
    return;
  }
  const child = spawn(
    'xz',
    ['--decompress', '--stdout', '--quiet', '--single-stream', `--format=${format}`],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Feed stdin concurrently; an EPIPE (xz stopped early on bad data) surfaces through xz's exit status.
  child.stdin.on('error', () => {});
  const feeding = (async () => {
    try {
      for await (const c of source) {
        if (!child.stdin.write(c)) await new Promise<void>((r) => child.stdin.once('drain', r));
      }
    } finally {
      child.stdin.end();
    }
  })();
  let failed: unknown;
  feeding.catch((e: unknown) => {
    failed = e;
    child.kill();
  });
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
  } finally {
    if (child.exitCode === null) child.kill();
  }
  await feeding.catch(() => {});
  const code = await exited;
  if (failed) throw failed;
  if (code !== 0) {
    throw new DebianError(
      'DEBIAN_DEB_INVALID',
      `cannot decompress ${what}: xz says ${stderr.trim() || `exit ${code}`}`,
      { path: what },
    );
  }
}
