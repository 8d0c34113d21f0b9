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
