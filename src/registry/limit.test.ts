import { describe, expect, it } from 'vitest';
import { Limiter, runBounded } from './limit.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('Limiter', () => {
  it('never runs more than n functions at once', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 12 }, () =>
        limiter.run(async () => {
          peak = Math.max(peak, ++running);
          await tick();
          running--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });
});

describe('runBounded', () => {
  describe('when every job succeeds', () => {
    it('runs each job once with at most n in flight', async () => {
      let running = 0;
      let peak = 0;
      const done: number[] = [];
      await runBounded(
        Array.from({ length: 10 }, (_, i) => async () => {
          peak = Math.max(peak, ++running);
          await tick();
          running--;
          done.push(i);
        }),
        4,
      );
      expect(peak).toBe(4);
      expect(done.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
  });

  describe('when a job fails', () => {
    it('starts no more jobs, waits for the running ones, and throws the first failure', async () => {
      const started: number[] = [];
      let finished = 0;
      const jobs = Array.from({ length: 10 }, (_, i) => async () => {
        started.push(i);
        await tick();
        if (i === 1) throw new Error('job 1 failed');
        await tick();
        finished++;
      });
      await expect(runBounded(jobs, 2)).rejects.toThrow('job 1 failed');
      // note: job 0 was running when job 1 failed; it must have finished before runBounded threw
      expect(finished).toBe(started.length - 1);
      expect(started.length).toBeLessThan(10);
    });
  });
});

describe('Limiter.acquire', () => {
  it('holds a turn until released, and a second release does nothing', async () => {
    const limiter = new Limiter(1);
    const release = await limiter.acquire();
    let second = false;
    const waiting = limiter.acquire().then((r) => {
      second = true;
      return r;
    });
    await tick();
    expect(second).toBe(false);
    release();
    release();
    const release2 = await waiting;
    expect(second).toBe(true);
    // The double release above must not have freed a second turn.
    let third = false;
    const pending = limiter.run(async () => {
      third = true;
    });
    await tick();
    expect(third).toBe(false);
    release2();
    await pending;
    expect(third).toBe(true);
  });
});
