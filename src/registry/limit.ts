/**
 * Bounded concurrency for blob transfers: a counting semaphore shared by every image of one push, and a runner that
 * stops starting jobs after the first failure and waits for the running ones (so no temp file is still being
 * written when the caller sees the error).
 */

/** A counting semaphore: at most `n` functions run at once; the rest wait in order. */
export class Limiter {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = Math.max(1, n);
  }
  /**
   * Waits for a turn and returns the function that ends it (calling it again does nothing). For turns that do not
   * fit one function, e.g. a turn held until a turn in another limiter is had.
   */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * Runs `jobs` at most `n` at a time, in order. After the first failure no further job starts; the ones running are
 * awaited, then the first failure is thrown.
 */
export async function runBounded(jobs: readonly (() => Promise<unknown>)[], n: number): Promise<void> {
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < jobs.length) {
      const job = jobs[next++]!;
      try {
        await job();
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, n), jobs.length) }, worker));
  if (failure) throw failure.error;
}
