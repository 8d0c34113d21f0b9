import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PINNED_NODE } from '../helpers/installed.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `npm install` on a clean clone leaves package-lock.json as committed, and `npm ci` (what .ci/run runs) accepts it:
 * the lock holds every platform's optional packages, not only this machine's (issue 15 §1).
 */

const ROOT = resolve(import.meta.dirname, '../..');

describe('package-lock.json', () => {
  it('is what npm install writes for package.json, byte for byte', () => {
    const dir = tempDir('pare-lock-');
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, f), join(dir, f));
    execFileSync(
      'npm',
      ['install', '--package-lock-only', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'],
      {
        cwd: dir,
        env: { ...process.env, PATH: `${resolve(PINNED_NODE, '..')}:${process.env.PATH}` },
        stdio: 'pipe',
      },
    );
    expect(readFileSync(join(dir, 'package-lock.json'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'package-lock.json'), 'utf8'),
    );
  });

  it('lists every optional dependency of every locked package (npm ci refuses a lock missing one)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing: string[] = [];
    // resolved as Node does: nested under the dependent first, then at the top
    for (const [path, entry] of Object.entries(lock.packages))
      for (const name of Object.keys(entry.optionalDependencies ?? {}))
        if (
          !lock.packages[`${path ? `${path}/` : ''}node_modules/${name}`] &&
          !lock.packages[`node_modules/${name}`]
        )
          missing.push(`${name} (optional dependency of ${path || 'the root'})`);
    expect(missing).toEqual([]);
  });
});
