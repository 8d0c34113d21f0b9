import { UsageError } from '../errors.ts';

/**
 * The key password, as cosign gets it: COSIGN_PASSWORD when set (an empty value means no password), else, when stdin
 * is a terminal, a prompt on stderr read without echo ("Enter password for private key: ", and "… again: " to
 * confirm a new one). Without either, a UsageError says how to set it.
 */

/** The terminal the password is read from (process.stdin) and the prompt written to (process.stderr). */
export interface PasswordTerminal {
  readonly input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  readonly output: { write(s: string): unknown };
}

const DEFAULT_TERMINAL: PasswordTerminal = { input: process.stdin, output: process.stderr };

/** Longest password read from the terminal (cosign has none; this bounds memory for a stuck key). */
export const MAX_PASSWORD_LENGTH = 4096;

/**
 * Writes `prompt` and reads one line from the terminal with echo off (raw mode): Enter ends it, Backspace deletes
 * the last character, Ctrl-C or Ctrl-D on an empty line aborts (UsageError). The terminal mode is restored in every
 * case.
 */
export function promptPassword(
  prompt: string,
  terminal: PasswordTerminal = DEFAULT_TERMINAL,
): Promise<string> {
  const { input, output } = terminal;
  return new Promise<string>((resolve, reject) => {
    let chars: string[] = [];
    const finish = (err: Error | undefined) => {
      input.removeListener('data', onData);
      input.setRawMode?.(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(chars.join(''));
      chars = [];
    };
    const onData = (chunk: string | Buffer) => {
      for (const c of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (c === '\r' || c === '\n') return finish(undefined);
        if (c === '\u0003' || (c === '\u0004' && chars.length === 0))
          return finish(new UsageError('USAGE', 'cannot read the key password: cancelled'));
        if (c === '\u007f' || c === '\b') chars.pop();
        else if (c >= ' ') chars.push(c);
        if (chars.length > MAX_PASSWORD_LENGTH)
          return finish(
            new UsageError(
              'USAGE',
              `cannot read the key password: longer than ${MAX_PASSWORD_LENGTH} characters`,
            ),
          );
      }
    };
    // Echo goes off before the prompt is shown: an answer typed the moment the prompt appears is never echoed.
    input.setRawMode?.(true);
    output.write(prompt);
    input.on('data', onData);
    input.resume();
  });
}

/**
 * Returns the password for a private key: COSIGN_PASSWORD, else a prompt when stdin is a terminal (twice, compared,
 * with `confirm`: for a new key). Throws a UsageError when neither is possible or the two entries differ.
 */
export async function cosignPassword(
  options: { confirm?: boolean; env?: NodeJS.ProcessEnv; terminal?: PasswordTerminal } = {},
): Promise<string> {
  const pw = (options.env ?? process.env).COSIGN_PASSWORD;
  if (pw !== undefined) return pw;
  const terminal = options.terminal ?? DEFAULT_TERMINAL;
  if (terminal.input.isTTY !== true)
    throw new UsageError(
      'USAGE',
      'cannot use an encrypted key: COSIGN_PASSWORD is not set and stdin is not a terminal to ask on (export COSIGN_PASSWORD=…; an empty value means no password)',
    );
  const first = await promptPassword('Enter password for private key: ', terminal);
  if (options.confirm) {
    const again = await promptPassword('Enter password for private key again: ', terminal);
    if (again !== first) throw new UsageError('USAGE', 'cannot create the key: the passwords do not match');
  }
  return first;
}
