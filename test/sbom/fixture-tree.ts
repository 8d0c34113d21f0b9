import { createHash } from 'node:crypto';
import { bufferContent, type Entry, fileEntry, symlinkEntry, Tree } from '../../src/fstree/index.ts';

/**
 * Generated image trees for the SBOM tests: a Debian 12 root with a dpkg database in either layout, DEP-5 copyright
 * files, usrmerge symlinks, ELF files carrying `.note.package`, and app files no package owns. Nothing is checked in.
 */

/** Returns a minimal little-endian ELF64 file whose only section is a `.note.package` note with `json`. */
export function elfWithPackageNote(json: string): Uint8Array {
  const desc = Buffer.concat([Buffer.from(json), Buffer.alloc(1)]);
  const descPadded = Buffer.concat([desc, Buffer.alloc((4 - (desc.length % 4)) % 4)]);
  const note = Buffer.alloc(12 + 4);
  note.writeUInt32LE(4, 0);
  note.writeUInt32LE(desc.length, 4);
  note.writeUInt32LE(0xcafe1a7e, 8);
  note.write('FDO\0', 12);
  const noteSec = Buffer.concat([note, descPadded]);
  const shoff = 64 + noteSec.length;
  const sh = Buffer.alloc(64 * 2);
  // section 1: SHT_NOTE at offset 64
  sh.writeUInt32LE(7, 64 + 4);
  sh.writeBigUInt64LE(64n, 64 + 0x18);
  sh.writeBigUInt64LE(BigInt(noteSec.length), 64 + 0x20);
  const hdr = Buffer.alloc(64);
  hdr.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  hdr.writeUInt16LE(3, 0x10); // ET_DYN
  hdr.writeUInt16LE(62, 0x12); // EM_X86_64
  hdr.writeUInt32LE(1, 0x14);
  hdr.writeBigUInt64LE(BigInt(shoff), 0x28);
  hdr.writeUInt16LE(64, 0x34);
  hdr.writeUInt16LE(64, 0x3a);
  hdr.writeUInt16LE(2, 0x3c);
  return new Uint8Array(Buffer.concat([hdr, noteSec, sh]));
}

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

export const LIBC_SO = elfWithPackageNote(
  '{"type":"deb","os":"debian","name":"glibc","version":"2.36-9+deb12u10","architecture":"amd64"}',
);
export const APP_BIN = elfWithPackageNote('{"type":"app","name":"server","version":"1.4.0"}');

const OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`;

const LIBC_COPYRIGHT = `Format: urn:test:copyright-format/1.0/
Upstream-Name: glibc

Files: *
Copyright: 1991-2023 Free Software Foundation, Inc.
License: LGPL-2.1+

Files: debian/*
Copyright: 1998 Somebody
License: GPL-2+

Files: libgcc/*
Copyright: 2009 Free Software Foundation, Inc.
License: GPL-3+ with GCC-runtime-library exception

License: LGPL-2.1+
 This library is free software; you can redistribute it.
`;

const SSL_COPYRIGHT = `Format: urn:test:copyright-format/1.0/

Files: *
Copyright: 1998-2023 The OpenSSL Project Authors
License: Apache-2.0

Files: crypto/ec/curve448/*
Copyright: 2015-2016 Cryptography Research, Inc.
License: Expat or Custom-Curve

License: Custom-Curve
 Permission is granted to use this code for curves.
`;

export interface FixtureOptions {
  /** `distroless` (status.d) or `classic` (status + info/). */
  readonly layout: 'distroless' | 'classic';
}

const LIBC_STANZA = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <libc6@maint.invalid>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
Homepage: urn:test:glibc
`;

const SSL_STANZA = `Package: libssl3
Status: install ok installed
Installed-Size: 6161
Maintainer: Debian OpenSSL Team <openssl@maint.invalid>
Architecture: amd64
Source: openssl (3.0.15-1~deb12u1)
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries
X-Pare-Sliced: yes
`;

const GONE_STANZA = `Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
`;

/** Returns a Debian-12-like image tree with libc6, libssl3 (sliced) and an app binary. */
export function fixtureTree(options: FixtureOptions): Tree {
  const files: Record<string, Uint8Array | string> = {
    '/usr/lib/os-release': OS_RELEASE,
    '/usr/lib/x86_64-linux-gnu/libc.so.6': LIBC_SO,
    '/usr/bin/ldd': '#!/bin/sh\necho ldd\n',
    '/usr/share/doc/libc6/copyright': LIBC_COPYRIGHT,
    '/usr/lib/x86_64-linux-gnu/libssl.so.3': 'not really libssl',
    '/usr/share/doc/libssl3/copyright': SSL_COPYRIGHT,
    '/app/server': APP_BIN,
    '/etc/passwd': 'root:x:0:0:root:/root:/sbin/nologin\n',
  };
  // note: libc6 lists /bin/ldd; the tree has it at /usr/bin/ldd behind the /bin symlink (usrmerge).
  const libcFiles = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/bin/ldd', '/usr/share/doc/libc6/copyright'];
  const sslFiles = ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/usr/share/doc/libssl3/copyright'];
  const content = (p: string) => files[p.replace(/^\/bin\//, '/usr/bin/')]!;
  const sums = (list: string[]) => list.map((p) => `${md5(content(p))}  ${p.slice(1)}\n`).join('');
  if (options.layout === 'distroless') {
    files['/var/lib/dpkg/status.d/libc6'] = LIBC_STANZA;
    files['/var/lib/dpkg/status.d/libc6.md5sums'] = sums(libcFiles);
    files['/var/lib/dpkg/status.d/libssl3'] = SSL_STANZA;
    files['/var/lib/dpkg/status.d/libssl3.md5sums'] = sums(sslFiles);
  } else {
    files['/var/lib/dpkg/status'] = `${SSL_STANZA}\n${GONE_STANZA}\n${LIBC_STANZA}`;
    files['/var/lib/dpkg/info/libc6:amd64.list'] = `/.\n/usr\n${libcFiles.join('\n')}\n`;
    files['/var/lib/dpkg/info/libc6:amd64.md5sums'] = sums(libcFiles);
    files['/var/lib/dpkg/info/libssl3:amd64.list'] = `${sslFiles.join('\n')}\n`;
    files['/var/lib/dpkg/info/libssl3:amd64.md5sums'] = sums(sslFiles);
  }
  const entries: [string, Entry][] = Object.entries(files).map(([p, c]) => [p, fileEntry(bufferContent(c))]);
  entries.push(['/bin', symlinkEntry('usr/bin')]);
  entries.push(['/etc/os-release', symlinkEntry('../usr/lib/os-release')]);
  return Tree.from(entries);
}
