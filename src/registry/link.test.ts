import { describe, expect, it } from 'vitest';
import { nextLink } from './link.ts';

describe('nextLink', () => {
  const base = 'https://r.test/v2/app/tags/list?n=2';
  it.each([
    [null, undefined],
    ['', undefined],
    ['</v2/app/tags/list?n=2&last=b>; rel="next"', 'https://r.test/v2/app/tags/list?n=2&last=b'],
    [
      '</v2/app/tags/list?last=a>; rel="prev", </v2/app/tags/list?last=c>; rel="next"',
      'https://r.test/v2/app/tags/list?last=c',
    ],
    ['</v2/app/tags/list?last=a>; rel="prev"', undefined],
    ['<https://other.test/page2>; rel=next', 'https://other.test/page2'],
  ])('%j → %j', (header, want) => {
    expect(nextLink(header, base)).toBe(want);
  });
});
