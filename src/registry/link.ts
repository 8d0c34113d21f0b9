/**
 * Paging of registry lists (tags, referrers): the next page is the `Link` header's `rel="next"` target (RFC 8288),
 * resolved against the page's URL. One parser for both, so a header with several links (`rel="prev"` first) is read
 * the same way everywhere.
 */

/** Returns the absolute URL of the `rel="next"` link in `header`, or undefined when there is none. */
export function nextLink(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;.*\brel="?next"?/i.exec(part);
    if (m) return new URL(m[1]!, base).href;
  }
  return undefined;
}
