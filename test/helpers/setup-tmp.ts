import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/**
 * Every test file gets its own temporary directory as TMPDIR, removed when the file finishes: whatever a test, the
 * code it runs or a pare child process puts under `os.tmpdir()` (spools, scratch layouts, archives) is gone
 * afterwards, without each test having to clean up. Mode 1777 like /tmp, so a sandboxed run as another uid can
 * still reach what a test prepared there.
 */
const previous = process.env.TMPDIR;
const dir = mkdtempSync(join(tmpdir(), 'pare-t-'));
chmodSync(dir, 0o1777);
process.env.TMPDIR = dir;

afterAll(() => {
  if (previous === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previous;
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    // Not worth failing a test run over (e.g. a read-only directory left by a non-root run); say where it is.
    console.warn(`[tmp] could not remove ${dir}: ${(e as Error).message}`);
  }
});
