import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bufferContent, fileEntry, TreeBuilder } from '../fstree/index.ts';
import {
  changelogDate,
  changelogSince,
  changelogTrailerDate,
  cveIds,
  MAX_CHANGELOG_HEAD,
  parseChangelog,
} from './changelog.ts';
import { parseControl } from './control.ts';
import type { DebPackage } from './deb.ts';

const ENTRY = (version: string, date: string) =>
  `hello (${version}) bookworm; urgency=medium\n\n  * A change.\n\n -- Jane Doe <jane@example.org>  ${date}\n\n`;

function deb(name: string, files: Record<string, Uint8Array>): DebPackage {
  const b = new TreeBuilder();
  for (const [p, bytes] of Object.entries(files)) b.put(p, fileEntry(bufferContent(bytes)));
  return {
    control: parseControl(`Package: ${name}\nVersion: 1\nArchitecture: amd64\n`)[0]!,
    controlFiles: new Map(),
    md5sums: new Map(),
    conffiles: [],
    tree: b.build(),
    compression: { control: 'xz', data: 'xz' },
  } as DebPackage;
}

describe('changelogTrailerDate', () => {
  it('reads the first entry, in any time zone, as seconds since 1970', () => {
    const text =
      ENTRY('2.0', 'Thu, 01 Feb 2024 13:00:00 +0100') + ENTRY('1.0', 'Sat, 10 Feb 2024 10:00:00 +0000');
    expect(changelogTrailerDate(text)).toBe(Date.UTC(2024, 1, 1, 12) / 1000);
    expect(changelogTrailerDate(ENTRY('1', 'Mon,  5 Feb 2024 00:00:00 -0500'))).toBe(
      Date.UTC(2024, 1, 5, 5) / 1000,
    );
  });

  it('gives undefined for text without a trailer line or with a malformed date', () => {
    expect(changelogTrailerDate('hello (1) bookworm; urgency=low\n\n  * x\n')).toBeUndefined();
    expect(changelogTrailerDate(ENTRY('1', 'yesterday'))).toBeUndefined();
    expect(changelogTrailerDate(' -- no address  Thu, 01 Feb 2024 13:00:00 +0100\n')).toBeUndefined();
  });
});

describe('changelogDate', () => {
  it('reads changelog.Debian.gz, else changelog.gz, and never a binNMU changelog', async () => {
    const gz = (t: string) => gzipSync(t);
    expect(
      await changelogDate(
        deb('hello', {
          '/usr/share/doc/hello/changelog.Debian.amd64.gz': gz(
            ENTRY('1+b1', 'Fri, 01 Mar 2024 00:00:00 +0000'),
          ),
          '/usr/share/doc/hello/changelog.Debian.gz': gz(ENTRY('1', 'Thu, 01 Feb 2024 00:00:00 +0000')),
        }),
      ),
    ).toBe(Date.UTC(2024, 1, 1) / 1000);
    expect(
      await changelogDate(
        deb('native', {
          '/usr/share/doc/native/changelog.gz': gz(ENTRY('1', 'Thu, 01 Feb 2024 00:00:00 +0000')),
        }),
      ),
    ).toBe(Date.UTC(2024, 1, 1) / 1000);
    expect(await changelogDate(deb('none', {}))).toBeUndefined();
  });

  it('stops decompressing after the first entry, so a long changelog is cheap; a damaged one gives undefined', async () => {
    // The first entry, then more text than MAX_CHANGELOG_HEAD: found without decompressing the rest.
    const long = ENTRY('9', 'Thu, 01 Feb 2024 00:00:00 +0000') + 'x'.repeat(4 * MAX_CHANGELOG_HEAD);
    expect(
      await changelogDate(deb('long', { '/usr/share/doc/long/changelog.Debian.gz': gzipSync(long) })),
    ).toBe(Date.UTC(2024, 1, 1) / 1000);
    // No trailer within the head: undefined rather than a date from deep inside the file.
    const late = 'y'.repeat(2 * MAX_CHANGELOG_HEAD) + ENTRY('1', 'Thu, 01 Feb 2024 00:00:00 +0000');
    expect(
      await changelogDate(deb('late', { '/usr/share/doc/late/changelog.Debian.gz': gzipSync(late) })),
    ).toBeUndefined();
    const broken = gzipSync(ENTRY('1', 'Thu, 01 Feb 2024 00:00:00 +0000')).subarray(0, 20);
    expect(
      await changelogDate(deb('broken', { '/usr/share/doc/broken/changelog.Debian.gz': broken })),
    ).toBeUndefined();
  });
});

describe('changelogSince', () => {
  const text =
    'hello (2:1.2-1+deb12u1) bookworm-security; urgency=high\n\n  * CVE-2024-1234 and CVE-2024-1234 again.\n\n -- J <j@e.org>  Thu, 01 Feb 2024 13:00:00 +0100\n\n' +
    'hello (2:1.2-1) bookworm; urgency=medium\n\n  * Fixes CVE-2023-99999.\n\n -- J <j@e.org>  Mon, 01 Jan 2024 13:00:00 +0100\n\n' +
    'hello (1.10-1) unstable; urgency=low\n\n  * CVE-2020-0001.\n\n -- J <j@e.org>  Mon, 01 Jan 2020 13:00:00 +0100\n';

  it('parses every entry header and body', () => {
    const e = parseChangelog(text);
    expect(e.map((x) => `${x.source} ${x.version} ${x.distributions}`)).toEqual([
      'hello 2:1.2-1+deb12u1 bookworm-security',
      'hello 2:1.2-1 bookworm',
      'hello 1.10-1 unstable',
    ]);
    expect(e[1]!.text).toBe('  * Fixes CVE-2023-99999.\n\n -- J <j@e.org>  Mon, 01 Jan 2024 13:00:00 +0100');
    expect(cveIds(text)).toEqual(['CVE-2020-0001', 'CVE-2023-99999', 'CVE-2024-1234']);
  });

  it('keeps the entries newer than the version, compared as Debian versions (epoch, ~, +)', async () => {
    const pkg = deb('hello', { '/usr/share/doc/hello/changelog.Debian.gz': gzipSync(text) });
    expect(await changelogSince(pkg, '2:1.2-1')).toMatchObject({ cves: ['CVE-2024-1234'], complete: true });
    // 1.10-1 without epoch is older than every 2: version; 1.9 < 1.10 as Debian compares them, not as strings
    const since = await changelogSince(pkg, '1.9-1');
    expect(since!.entries.map((x) => x.version)).toEqual(['2:1.2-1+deb12u1', '2:1.2-1', '1.10-1']);
    expect(since!.complete).toBe(false);
    expect((await changelogSince(pkg, '2:1.2-1+deb12u1'))!.entries).toEqual([]);
    expect(await changelogSince(deb('hello', {}), '1')).toBeUndefined();
  });
});
