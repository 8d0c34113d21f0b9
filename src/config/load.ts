import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { UsageError } from '../errors.ts';
import { type Config, configSchema } from './schema.ts';

/** A loaded pare.yaml: the validated config, where it came from, and its exact bytes (for provenance). */
export interface LoadedConfig {
  readonly config: Config;
  readonly path: string;
  /** Directory that relative paths in the config are resolved against. */
  readonly dir: string;
  readonly bytes: Uint8Array;
  /** Returns "file:line:column" of a config node (e.g. `['files', 2, 'src']`), for error messages. */
  readonly locate: (keys: readonly (string | number)[]) => string;
}

/** Accepts a pare.yaml path or a directory containing one. */
export async function findConfig(target: string): Promise<string> {
  const st = await stat(target).catch(() => undefined);
  if (!st)
    throw new UsageError(
      'CONFIG_NOT_FOUND',
      `cannot find ${JSON.stringify(target)}: no such file or directory (give a pare.yaml or the directory holding it)`,
      { file: target },
    );
  return st.isDirectory() ? resolve(target, 'pare.yaml') : resolve(target);
}

/**
 * Loads and validates pare.yaml. Every problem is a UsageError (CONFIG_INVALID) naming the file, line and column of
 * the offending key or value, and what is wanted there.
 */
export async function loadConfig(target: string): Promise<LoadedConfig> {
  const path = await findConfig(target);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new UsageError(
      'CONFIG_NOT_FOUND',
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e, file: path },
    );
  }
  const text = new TextDecoder().decode(bytes);
  const config = parseConfigText(text, path);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const locate = (keys: readonly (string | number)[]) => {
    for (let n = keys.length; n >= 0; n--) {
      const node = (n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true)) as {
        range?: [number, number, number];
      } | null;
      if (node?.range) {
        const p = lines.linePos(node.range[0]);
        return `${path}:${p.line}:${p.col}`;
      }
    }
    return path;
  };
  return { config, path, dir: dirname(path), bytes, locate };
}

/** Parses pare.yaml text (see loadConfig). */
export function parseConfigText(text: string, path = 'pare.yaml'): Config {
  return parseYamlFile(text, path, configSchema, "see the README's pare.yaml reference");
}

/**
 * Parses YAML `text` (from `path`, for messages) and validates it with a zod `schema`. Any error — YAML syntax, a
 * schema issue (for an unknown key, the key itself), a number or boolean not in its plain spelling — is a UsageError
 * CONFIG_INVALID whose message starts with `path:line:column:`. `hint` follows an unknown-key message.
 */
export function parseYamlFile<T>(text: string, path: string, schema: z.ZodType<T>, hint: string): T {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const p = lines.linePos(offset ?? 0);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const { line, column } = at(e.pos[0]);
    throw new UsageError('CONFIG_INVALID', `${path}:${line}:${column}: ${e.message.split('\n')[0]}`, {
      file: path,
      line,
      column,
    });
  }
  const value = doc.toJS() ?? {};
  const r = schema.safeParse(value);
  if (r.success) {
    checkScalars(text, doc.contents, [], (offset, message) => {
      const { line, column } = at(offset);
      throw new UsageError('CONFIG_INVALID', `${path}:${line}:${column}: ${message}`, {
        file: path,
        line,
        column,
      });
    });
    return r.data;
  }
  const issue = r.error.issues[0]!;
  // Point at the deepest node that exists: for an unknown key, the key itself.
  let keys = issue.path as (string | number)[];
  if (issue.code === 'unrecognized_keys') keys = [...keys, issue.keys[0]!];
  // A bad key of a record (a variant's name) is located at the key, not at its value.
  const atKey = issue.code === 'unrecognized_keys' || issue.code === 'invalid_key';
  let node: unknown;
  for (let n = keys.length; n >= 0 && !node; n--) {
    if (atKey && n === keys.length) {
      const parent = n > 1 ? doc.getIn(keys.slice(0, -1), true) : doc.contents;
      if (isMap(parent))
        node = parent.items.find(
          (it) => (it.key as { value?: unknown })?.value === keys[keys.length - 1],
        )?.key;
    } else node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true);
  }
  const range = (node as { range?: [number, number, number] } | undefined)?.range;
  const { line, column } = at(range?.[0]);
  const field = keys.join('.') || '(top level)';
  const msg =
    issue.code === 'unrecognized_keys'
      ? `unknown key ${JSON.stringify(issue.keys[0])}${issue.path.length ? ` in ${issue.path.join('.')}` : ''}; ${hint}`
      : issue.code === 'invalid_key'
        ? `${field}: ${issue.issues[0]?.message ?? issue.message}`
        : `${field}: ${issue.message}`;
  throw new UsageError('CONFIG_INVALID', `${path}:${line}:${column}: ${msg}`, { file: path, line, column });
}

/**
 * Refuses a number or boolean written in any but its one plain spelling (`0755`, `0x1F`, `1e3`, `1.0`, `.inf`,
 * `True`): YAML reads them as values whose text differs from what was written, and pare never reinterprets input.
 * `fail` gets the node's offset and the message (it throws).
 */
function checkScalars(
  text: string,
  node: unknown,
  keys: (string | number)[],
  fail: (offset: number, message: string) => never,
): void {
  if (isMap(node)) {
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const k = isScalar(item.key) ? String(item.key.value) : '?';
      checkScalars(text, item.key, [...keys, k], fail);
      checkScalars(text, item.value, [...keys, k], fail);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      checkScalars(text, item, [...keys, i], fail);
    });
  } else if (
    isScalar(node) &&
    node.range &&
    (typeof node.value === 'number' || typeof node.value === 'boolean')
  ) {
    const written = text.slice(node.range[0], node.range[1]);
    const plain = String(node.value);
    if (written !== plain && !node.tag)
      fail(
        node.range[0],
        `${keys.join('.') || '(top level)'}: ${written} is read as the ${typeof node.value} ${plain}; write ${plain}, or quote it ("${written}") to mean the text`,
      );
  }
}
