/**
 * glibc's fortified (`__*_chk`) functions, by the glibc release that first exported each: the fortify list checksec
 * would read from a libc, for files whose root has no libc of their architecture (an arm64 image audited on amd64
 * with no arm64 libc6 unpacked, a slice without libc).
 *
 * Source: the `Versions` files of the glibc source tree (sourceware.org glibc, mirrored as github.com/bminor/glibc),
 * which list every exported symbol under the version node that introduced it:
 *   debug/Versions  GLIBC_2.3.4 … GLIBC_2.42 (all but the four below)
 *   login/Versions  GLIBC_2.4   __getlogin_r_chk, __ptsname_r_chk
 *   misc/Versions   GLIBC_2.4   __syslog_chk, __vsyslog_chk
 * The version nodes are the release that added the symbol; ports newer than that (aarch64 starts at GLIBC_2.17,
 * riscv at 2.27) export all the older ones under their base version, so releases, not node names, select the list.
 * `__stack_chk_fail` and `__chk_fail` do not end in `_chk` and are not fortify functions (checksec's sed skips them).
 * test/elf/glibc-chk.test.ts compares the list with the real libc6 of Debian 12 (glibc 2.36) for amd64, i386 and
 * arm64.
 */
import type { FortifyList } from './hardening.ts';

/** `[glibc release, functions whose `__<name>_chk` it added]`, oldest first. */
export const GLIBC_CHK_FUNCTIONS: readonly (readonly [release: string, names: readonly string[]])[] = [
  [
    '2.3.4',
    [
      'memcpy',
      'memmove',
      'mempcpy',
      'memset',
      'stpcpy',
      'strcat',
      'strcpy',
      'strncat',
      'strncpy',
      'sprintf',
      'vsprintf',
      'snprintf',
      'vsnprintf',
      'printf',
      'fprintf',
      'vprintf',
      'vfprintf',
      'gets',
    ],
  ],
  [
    '2.4',
    [
      'fgets',
      'fgets_unlocked',
      'read',
      'pread',
      'pread64',
      'readlink',
      'getcwd',
      'getwd',
      'recv',
      'recvfrom',
      'realpath',
      'wctomb',
      'stpncpy',
      'wcscpy',
      'wmemcpy',
      'wmemmove',
      'wmempcpy',
      'wcpcpy',
      'wcsncpy',
      'wcscat',
      'wcsncat',
      'wmemset',
      'wcpncpy',
      'swprintf',
      'vswprintf',
      'wprintf',
      'fwprintf',
      'vwprintf',
      'vfwprintf',
      'fgetws',
      'fgetws_unlocked',
      'confstr',
      'getgroups',
      'ttyname_r',
      'gethostname',
      'getdomainname',
      'wcrtomb',
      'mbsnrtowcs',
      'wcsnrtombs',
      'mbsrtowcs',
      'wcsrtombs',
      'mbstowcs',
      'wcstombs',
      // login/Versions
      'getlogin_r',
      'ptsname_r',
      // misc/Versions
      'syslog',
      'vsyslog',
    ],
  ],
  ['2.5', ['readlinkat']],
  ['2.7', ['fread', 'fread_unlocked']],
  ['2.8', ['asprintf', 'vasprintf', 'dprintf', 'vdprintf', 'obstack_printf', 'obstack_vprintf']],
  ['2.11', ['longjmp']],
  ['2.15', ['fdelt']],
  ['2.16', ['poll', 'ppoll']],
  ['2.25', ['explicit_bzero']],
  ['2.38', ['strlcat', 'strlcpy', 'wcslcat', 'wcslcpy']],
  ['2.42', ['inet_ntop', 'inet_pton']],
];

/** The newest glibc release the list knows. */
export const GLIBC_CHK_LATEST = GLIBC_CHK_FUNCTIONS[GLIBC_CHK_FUNCTIONS.length - 1]![0];

/** Compares glibc release strings numerically: 2.3.4 < 2.4 < 2.16. */
export function compareGlibc(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const lists = new Map<string, FortifyList>();

/**
 * Returns the fortify list of glibc `release` (default: the newest known): every function whose `_chk` variant that
 * release exports, in checksec's form (`memcpy_chk`, plain `memcpy`). Memoised per release.
 */
export function glibcFortifyList(release: string = GLIBC_CHK_LATEST): FortifyList {
  let hit = lists.get(release);
  if (!hit) {
    const plain = new Set<string>();
    for (const [since, names] of GLIBC_CHK_FUNCTIONS)
      if (compareGlibc(since, release) <= 0) for (const n of names) plain.add(n);
    hit = {
      checked: new Set([...plain].map((n) => `${n}_chk`)),
      plain,
      source: `built-in list of glibc ${release}`,
    };
    lists.set(release, hit);
  }
  return hit;
}

/**
 * Returns the glibc release a file was linked against at least: the newest `GLIBC_x.y` among the versions it needs
 * (from libc.so.6, libm.so.6, ld.so: glibc names them all by release) or defines (glibc's own objects), or undefined
 * when there is none (not linked against glibc, or static).
 */
export function glibcReleaseNeeded(
  needs: readonly { readonly versions: readonly { readonly name: string }[] }[],
): string | undefined {
  let best: string | undefined;
  for (const n of needs) {
    for (const v of n.versions) {
      const m = /^GLIBC_([0-9]+(?:\.[0-9]+)+)$/.exec(v.name);
      if (m && (best === undefined || compareGlibc(m[1]!, best) > 0)) best = m[1]!;
    }
  }
  return best;
}
