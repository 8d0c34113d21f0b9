import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README renders and is complete (issue 15 §5): every table row has as many cells as its header (a raw `|` in a
 * code span splits a cell: write `\|`), and every environment variable the sources read is documented.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The cells of a table row: split on pipes not escaped with a backslash (GFM's rule, code spans included). */
const cells = (row: string): number => row.trim().split(/(?<!\\)\|/).length - 2;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

describe('README.md', () => {
  it('has tables whose rows all have the header’s number of cells', () => {
    const broken: string[] = [];
    let header: number | undefined;
    for (const [i, line] of README.split('\n').entries()) {
      if (!line.startsWith('|')) {
        header = undefined;
        continue;
      }
      header ??= cells(line);
      if (cells(line) !== header) broken.push(`README.md:${i + 1}: ${cells(line)} cells, header ${header}`);
    }
    expect(broken).toEqual([]);
  });

  it('documents every environment variable the sources read', () => {
    const read = new Set<string>();
    for (const f of sourceFiles(join(ROOT, 'src')))
      for (const m of readFileSync(f, 'utf8').matchAll(
        /\b(?:process\.env|env|\))\??\.([A-Z][A-Z0-9_]+)\b|\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]/g,
      ))
        read.add(m[1] ?? m[2]!);
    expect(read.size).toBeGreaterThan(10);
    const env = README.slice(README.indexOf('**Environment**'));
    expect(env.length).toBeLessThan(README.length);
    expect([...read].filter((v) => !env.includes(`\`${v}`)).sort()).toEqual([]);
  });
});
