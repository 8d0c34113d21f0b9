/** Output helpers for the CLI: sizes, tables and colour (off when not a TTY or NO_COLOR is set). */

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

export function color(code: number, s: string, on = useColor()): string {
  return on ? `\x1b[${code}m${s}\x1b[0m` : s;
}
export const green = (s: string, on?: boolean) => color(32, s, on);
export const red = (s: string, on?: boolean) => color(31, s, on);
export const yellow = (s: string, on?: boolean) => color(33, s, on);
export const bold = (s: string, on?: boolean) => color(1, s, on);

/** Renders rows as a left-aligned table with two spaces between columns (ANSI codes do not count for width). */
export function table(rows: readonly (readonly string[])[]): string {
  const width = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const cols = Math.max(0, ...rows.map((r) => r.length));
  const w = Array.from({ length: cols }, (_, i) => Math.max(0, ...rows.map((r) => width(r[i] ?? ''))));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(w[i]! - width(c))))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Writes a JSON document with two-space indent and a trailing newline. */
export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

/**
 * A one-line download progress bar on stderr (only on a TTY; silent otherwise so logs stay clean). `update` takes
 * the archive client's progress events.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): {
  update: (e: {
    phase: string;
    filesDone: number;
    filesTotal: number;
    bytesDone: number;
    bytesTotal: number;
  }) => void;
  done: () => void;
} {
  const on = Boolean(stream.isTTY);
  let shown = false;
  let last = 0;
  return {
    update(e) {
      if (!on) return;
      const now = Date.now();
      if (now - last < 100 && e.filesDone < e.filesTotal) return;
      last = now;
      const width = 24;
      const frac =
        e.bytesTotal > 0 ? e.bytesDone / e.bytesTotal : e.filesTotal > 0 ? e.filesDone / e.filesTotal : 1;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      stream.write(
        `\r${e.phase === 'index' ? 'indexes ' : 'packages'} [${bar}] ${e.filesDone}/${e.filesTotal} ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)}  `,
      );
      shown = true;
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}
