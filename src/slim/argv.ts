import { UsageError } from '../errors.ts';

/**
 * Splits a probe command (`python3 -c "import json, ssl"`) into argv the way a POSIX shell splits words, and nothing
 * more: single quotes, double quotes (where `\"`, `\\`, `\$` and `` \` `` are escapes) and backslash outside quotes.
 * No shell runs the probe, so what a shell would expand or interpret (`$`, `` ` ``, `|`, `;`, `&`, `<`, `>`, `(`,
 * `)`, globs, `~`, `#` comments) outside quotes is refused rather than passed on literally: write
 * `sh -c '…'` (with --include-shell) when a shell is what the probe needs.
 */
export function splitCommand(text: string, what = 'probe'): string[] {
  const out: string[] = [];
  let word: string | undefined;
  const fail = (i: number, why: string) =>
    new UsageError(
      'USAGE',
      `cannot use ${what} ${JSON.stringify(text)}: ${why} at column ${i + 1}; no shell runs it (quote the character, or write sh -c '…' with --include-shell)`,
    );
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw fail(i, 'unterminated single quote');
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let s = '';
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        const d = text[j]!;
        if (d === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) s += text[++j]!;
        else if (d === '$' || d === '`') throw fail(j, `${JSON.stringify(d)} would be expanded by a shell`);
        else s += d;
      }
      if (j >= text.length) throw fail(i, 'unterminated double quote');
      word = (word ?? '') + s;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw fail(i, 'a trailing backslash');
      word = (word ?? '') + text[++i]!;
    } else if ('$`|;&<>()*?[]{}~'.includes(c) || (c === '#' && word === undefined)) {
      throw fail(i, `${JSON.stringify(c)} means something to a shell`);
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) out.push(word);
  if (out.length === 0)
    throw new UsageError('USAGE', `cannot use ${what} ${JSON.stringify(text)}: it is empty`);
  return out;
}
