import type { BuildStep } from '../build/index.ts';
import type { DownloadProgress } from '../debian/index.ts';
import { UsageError } from '../errors.ts';
import type { BlobProgress } from '../registry/index.ts';
import { formatBytes } from './format.ts';

/**
 * Progress of long steps on stderr (never stdout, so piped results and deterministic output files are untouched),
 * the way crane and skopeo show it:
 *   tty   a live line redrawn in place (at most every 100 ms), plus one line per finished blob or step;
 *   plain one line per event worth a log line (a step started or ended, a file or blob finished), no escape codes;
 *   none  nothing.
 * The mode is `--progress=MODE` (any command), else PARE_PROGRESS, else none when PARE_NO_PROGRESS is set, else tty
 * when stderr is a terminal and none otherwise. `--json` and `-q` turn it off whatever the mode.
 */

export type ProgressMode = 'tty' | 'plain' | 'none';
const MODES: readonly string[] = ['tty', 'plain', 'none', 'auto'];

let flagMode: string | undefined;

/** Sets the mode given by `--progress` (main.ts calls this before a command runs). Throws USAGE on an unknown mode. */
export function setProgressFlag(v: string | undefined): void {
  if (v !== undefined) checkMode('--progress', v);
  flagMode = v;
}

function checkMode(where: string, v: string): void {
  if (!MODES.includes(v))
    throw new UsageError(
      'USAGE',
      `cannot use ${where}=${JSON.stringify(v)}: want one of ${MODES.join(', ')}`,
    );
}

/** Returns the progress mode for a command run with `off` (its `--json` or `--quiet`) on `stream`. */
export function progressMode(
  off = false,
  stream: { isTTY?: boolean } = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): ProgressMode {
  if (off) return 'none';
  let m = flagMode;
  if (m === undefined && env.PARE_PROGRESS) {
    checkMode('PARE_PROGRESS', env.PARE_PROGRESS);
    m = env.PARE_PROGRESS;
  }
  if (m === undefined && env.PARE_NO_PROGRESS) return 'none';
  if (m === undefined || m === 'auto') return stream.isTTY === true ? 'tty' : 'none';
  return m as ProgressMode;
}

/** What long-running commands report to; every method is a no-op in mode none. */
export interface Progress {
  readonly mode: ProgressMode;
  /** A step of `pare build` started or ended. */
  step(e: BuildStep): void;
  /** Debian index and .deb downloads. */
  download(e: DownloadProgress): void;
  /** Registry blob transfers (pull, push, copy). */
  blob(e: BlobProgress): void;
  /** Clears the live line (call once the command's work is over, before its result lines). */
  done(): void;
}

const short = (d: string) => d.slice(7, 19);
const STEP_VERB: Record<BuildStep['step'], readonly [string, string]> = {
  base: ['opening base image', 'opened base image'],
  resolve: ['resolving packages', 'resolved packages'],
  unpack: ['unpacking packages', 'unpacked packages'],
  slice: ['slicing', 'sliced'],
  compress: ['compressing layers', 'compressed layers'],
  write: ['writing', 'wrote'],
};

/** Returns the progress reporter for a command (see the file comment for the modes). */
export function progress(
  mode: ProgressMode = progressMode(),
  stream: NodeJS.WritableStream & { columns?: number } = process.stderr,
): Progress {
  let liveShown = false;
  let last = 0;
  const blobs = new Map<string, BlobProgress>();
  const line = (s: string) => {
    if (mode === 'tty') {
      stream.write(`\r\x1b[K${s}\n`);
      liveShown = false;
    } else stream.write(`pare: ${s}\n`);
  };
  const live = (s: string, force = false) => {
    if (mode !== 'tty') return;
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    stream.write(`\r\x1b[K${s.slice(0, (stream.columns ?? 100) - 1)}`);
    liveShown = true;
  };
  const started = new Set<string>();
  const filesDone = new Map<string, number>();
  const what = (e: DownloadProgress) => (e.phase === 'index' ? 'index' : '.deb');
  return {
    mode,
    step(e) {
      if (mode === 'none') return;
      const [doing, did] = STEP_VERB[e.step];
      const on = e.platform ? ` (${e.platform})` : '';
      const detail = e.detail
        ? `: ${e.detail.map((d) => (typeof d === 'string' ? d : formatBytes(d.bytes))).join('')}`
        : '';
      if (e.state === 'start') {
        if (mode === 'plain') line(`${doing}${on}${detail}`);
        else live(`${doing}${on}${detail} …`, true);
      } else line(`${did}${on}${detail}`);
    },
    download(e) {
      if (mode === 'none') return;
      // A batch is one call of the archive client: its totals do not change while it runs.
      const batch = e.phase === 'index' ? `index:${e.current}` : `package:${e.filesTotal}:${e.bytesTotal}`;
      if (mode === 'plain') {
        if (e.phase === 'package' && !started.has(batch)) {
          started.add(batch);
          line(
            `fetching ${e.filesTotal} .deb${e.filesTotal === 1 ? '' : 's'} (${formatBytes(e.bytesTotal)})`,
          );
        }
        // filesDone moves only when a file is complete: one line per finished file.
        if (e.filesDone > (filesDone.get(batch) ?? 0)) {
          filesDone.set(batch, e.filesDone);
          line(
            e.phase === 'index'
              ? `fetched index ${e.current} (${formatBytes(e.bytesTotal)})`
              : `fetched ${e.filesDone}/${e.filesTotal} .debs (${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)}): ${e.current}`,
          );
        }
        return;
      }
      const width = 24;
      const frac =
        e.bytesTotal > 0 ? e.bytesDone / e.bytesTotal : e.filesTotal > 0 ? e.filesDone / e.filesTotal : 1;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      live(
        `fetching ${what(e)}s [${bar}] ${e.filesDone}/${e.filesTotal} ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)}`,
        e.filesDone === e.filesTotal,
      );
    },
    blob(e) {
      if (mode === 'none') return;
      const verb = e.direction === 'push' ? 'pushed' : 'pulled';
      if (e.state === 'exists' || e.state === 'mounted' || e.state === 'done') {
        blobs.delete(e.digest);
        const how = e.state === 'exists' ? 'already there' : e.state === 'mounted' ? 'mounted' : verb;
        line(`${short(e.digest)}: ${how}${e.total !== undefined ? ` (${formatBytes(e.total)})` : ''}`);
        return;
      }
      if (e.state === 'start' && mode === 'plain') {
        const doing = e.direction === 'push' ? 'pushing' : 'pulling';
        line(`${short(e.digest)}: ${doing}${e.total !== undefined ? ` (${formatBytes(e.total)})` : ''}`);
      }
      blobs.set(e.digest, e);
      live(
        [...blobs.values()]
          .map(
            (p) => `${short(p.digest)} ${formatBytes(p.bytes)}${p.total ? `/${formatBytes(p.total)}` : ''}`,
          )
          .join('  '),
      );
    },
    done() {
      if (liveShown) stream.write('\r\x1b[K');
      liveShown = false;
    },
  };
}
