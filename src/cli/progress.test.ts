import { describe, expect, it } from 'vitest';
import { progress, progressMode, setProgressFlag } from './progress.ts';

/** A stream that keeps what is written. */
function sink(): NodeJS.WritableStream & { text: string } {
  const s = {
    text: '',
    write(c: string) {
      s.text += c;
      return true;
    },
  };
  return s as unknown as NodeJS.WritableStream & { text: string };
}

describe('progressMode', () => {
  it.each([
    [{}, false, 'none'],
    [{}, true, 'tty'],
    [{ PARE_PROGRESS: 'plain' }, false, 'plain'],
    [{ PARE_PROGRESS: 'none' }, true, 'none'],
    [{ PARE_PROGRESS: 'auto' }, true, 'tty'],
    [{ PARE_NO_PROGRESS: '1' }, true, 'none'],
    [{ PARE_NO_PROGRESS: '1', PARE_PROGRESS: 'tty' }, false, 'tty'],
  ])('with %j and a terminal %s gives %s', (env, isTTY, want) => {
    expect(progressMode(false, { isTTY }, env)).toBe(want);
  });

  it('is none under --json or -q whatever is forced, and the flag wins over the environment', () => {
    setProgressFlag('plain');
    try {
      expect(progressMode(false, {}, { PARE_PROGRESS: 'none' })).toBe('plain');
      expect(progressMode(true, { isTTY: true }, {})).toBe('none');
    } finally {
      setProgressFlag(undefined);
    }
  });

  it('throws USAGE naming the bad mode', () => {
    expect(() => setProgressFlag('fancy')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => progressMode(false, {}, { PARE_PROGRESS: 'x' })).toThrow(/PARE_PROGRESS="x"/);
  });
});

describe('progress', () => {
  const blob = {
    direction: 'pull',
    host: 'h',
    repository: 'r',
    digest: `sha256:${'ab'.repeat(32)}`,
    total: 2048,
  } as const;

  it('draws a live line on a terminal and clears it when done', () => {
    const s = sink();
    const p = progress('tty', s);
    p.blob({ ...blob, state: 'data', bytes: 1024 });
    expect(s.text).toBe('\r\x1b[Kabababababab 1.0 KiB/2.0 KiB');
    p.blob({ ...blob, state: 'done', bytes: 2048 });
    expect(s.text.endsWith('\r\x1b[Kabababababab: pulled (2.0 KiB)\n')).toBe(true);
    p.step({ step: 'compress', state: 'start' });
    p.done();
    expect(s.text.endsWith('compressing layers …\r\x1b[K')).toBe(true);
  });

  it('writes plain lines without escape codes, and nothing in mode none', () => {
    const s = sink();
    const p = progress('plain', s);
    p.step({ step: 'slice', state: 'start', platform: 'linux/amd64' });
    p.step({ step: 'slice', state: 'done', platform: 'linux/amd64', detail: ['kept ', { bytes: 3 << 20 }] });
    p.download({
      phase: 'package',
      filesDone: 0,
      filesTotal: 2,
      bytesDone: 10,
      bytesTotal: 20,
      current: 'a.deb',
    });
    p.download({
      phase: 'package',
      filesDone: 1,
      filesTotal: 2,
      bytesDone: 20,
      bytesTotal: 20,
      current: 'a.deb',
    });
    p.download({
      phase: 'package',
      filesDone: 1,
      filesTotal: 2,
      bytesDone: 20,
      bytesTotal: 20,
      current: 'b.deb',
    });
    p.done();
    expect(s.text).toBe(
      [
        'pare: slicing (linux/amd64)',
        'pare: sliced (linux/amd64): kept 3.0 MiB',
        'pare: fetching 2 .debs (20 B)',
        'pare: fetched 1/2 .debs (20 B/20 B): a.deb',
        '',
      ].join('\n'),
    );
    const n = sink();
    const q = progress('none', n);
    q.step({ step: 'slice', state: 'start' });
    q.blob({ ...blob, state: 'done', bytes: 2048 });
    q.done();
    expect(n.text).toBe('');
  });
});
