import picomatch from 'picomatch';

/**
 * What the slicer drops even when something points at it, and what it leaves out of the directory-wide keeps
 * (Python's standard library). These apply to files reached *indirectly* (package configuration, a probe, a script's
 * interpreter); a path named by the user (entrypoint, `executables:`, `keep:`) is always kept.
 *
 * Paths are canonical (merged /usr: `/usr/bin/sh`, never `/bin/sh`).
 */

const SHELLS = [
  '/usr/bin/sh',
  '/usr/bin/bash',
  '/usr/bin/rbash',
  '/usr/bin/dash',
  '/usr/bin/zsh',
  '/usr/bin/busybox',
  '/usr/bin/ash',
  '/etc/profile',
  '/etc/profile.d/**',
  '/etc/bash.bashrc',
  '/etc/skel/**',
];

/** Package managers and the tooling of perl-base/debconf that only maintainer scripts use. */
const PACKAGE_MANAGERS = [
  '/usr/bin/dpkg*',
  '/usr/sbin/dpkg*',
  '/usr/bin/apt*',
  '/usr/lib/apt/**',
  '/usr/lib/dpkg/**',
  '/usr/share/dpkg/**',
  '/etc/apt/**',
  '/etc/dpkg/**',
  '/var/lib/apt/**',
  '/var/cache/apt/**',
  '/var/lib/dpkg/info/**',
  '/var/lib/dpkg/alternatives/**',
  '/usr/bin/perl*',
  '/usr/lib/*/perl-base/**',
  '/usr/share/perl5/Debian/**',
  '/usr/bin/debconf*',
  '/usr/share/debconf/**',
  '/usr/sbin/update-alternatives',
  '/usr/bin/update-alternatives',
  '/etc/alternatives/README',
];

/** Documentation and packaging leftovers: never needed at run time. Licenses are kept by their own rule. */
const DOCS = [
  '/usr/share/doc/**',
  '/usr/share/man/**',
  '/usr/share/info/**',
  '/usr/share/lintian/**',
  '/usr/share/bug/**',
  '/usr/share/doc-base/**',
  '/usr/share/menu/**',
  '/usr/share/bash-completion/**',
  '/usr/share/zsh/**',
  '/usr/share/fish/**',
  '/usr/share/gdb/**',
  '/etc/bash_completion.d/**',
];

/** Service-manager and login configuration a container never reads. */
const SERVICE = [
  '/etc/init.d/**',
  '/etc/rc?.d/**',
  '/etc/cron.*/**',
  '/etc/cron.*',
  '/etc/logrotate.d/**',
  '/etc/systemd/**',
  '/usr/lib/systemd/**',
  '/etc/update-motd.d/**',
  '/etc/kernel/**',
  '/etc/default/**',
  '/etc/motd',
  '/etc/issue',
  '/etc/issue.net',
  '/etc/ld.so.conf.d/**',
  '/etc/ld.so.conf',
];

/** Locale data: dropped unless a locale is asked for (`locales:`), matched by locale name prefix. */
const LOCALE_DIRS = ['/usr/share/locale', '/usr/lib/locale', '/usr/share/i18n/locales'];

const opts = { dot: true } as const;
const isShell = picomatch(SHELLS, opts);
const isPackageManager = picomatch(PACKAGE_MANAGERS, opts);
const isDoc = picomatch(DOCS, opts);
const isService = picomatch(SERVICE, opts);

/** Why a path is refused (for the slice notes), or undefined when it may be kept. */
export function denied(
  path: string,
  options: { shell: boolean; locales: readonly string[] },
): string | undefined {
  if (!options.shell && isShell(path)) return 'a shell (set shell: true to keep shells)';
  if (!options.shell && isPackageManager(path)) return 'package-manager tooling (set shell: true to keep it)';
  if (isDoc(path) && !/^\/usr\/share\/doc\/[^/]+\/copyright$/.test(path)) return 'documentation';
  if (isService(path)) return 'service-manager configuration';
  if (/(^|\/)__pycache__(\/|$)/.test(path)) return 'Python bytecode cache';
  for (const d of LOCALE_DIRS) {
    if (!path.startsWith(`${d}/`)) continue;
    const name = path.slice(d.length + 1).split('/')[0]!;
    if (!localeWanted(name, options.locales)) return `locale "${name}" (not in locales:)`;
  }
  return undefined;
}

/** True when locale directory `name` (`de`, `de_DE.utf8`, `C.utf8`, `locale.alias`) is asked for. C is always wanted. */
export function localeWanted(name: string, locales: readonly string[]): boolean {
  if (/^C(\.|$)/i.test(name) || name === 'locale.alias') return true;
  const norm = (x: string) => x.toLowerCase().replace(/utf-8/g, 'utf8');
  const n = norm(name);
  return locales.some((want) => {
    const l = norm(want);
    // "de_DE.UTF-8" wants the compiled locale de_DE.utf8 and the message catalogues of "de_DE" and "de".
    return (
      n === l ||
      (/^[._@]/.test(n.slice(l.length)) && n.startsWith(l)) ||
      (l.startsWith(n) && /^[._@]/.test(l.slice(n.length)))
    );
  });
}

/** True for the shells themselves (a root script whose interpreter is one of these needs `shell: true`). */
export function isShellPath(path: string): boolean {
  return isShell(path) && path.startsWith('/usr/bin/');
}

/**
 * Parts of CPython's standard library that a program running in a container does not need. Relative to
 * `/usr/lib/python3.X/`. `keep:` globs bring any of them back.
 * - the test suite, IDLE, Tk, turtle demos, ensurepip's bundled wheels, lib2to3 (and its tests), bytecode caches,
 *   the static-library config directory;
 * - the C modules of PEP 594's "dead batteries" (deprecated in 3.11, removed in 3.13): nis (which alone pulls in
 *   libnsl, libtirpc and the whole Kerberos stack), crypt, spwd, ossaudiodev, audioop;
 * - the interactive-terminal modules: readline (line editing at the REPL) and curses (their libraries ncurses, tinfo,
 *   readline go with them);
 * - pydoc_data (the text `help()` shows for keywords and topics);
 * - `_dbm`, dbm.ndbm over Berkeley DB (1.8 MiB of libdb): `dbm.open` falls back to dbm.dumb for new files; only
 *   reading existing Berkeley DB files needs it (bring it back with a keep glob on lib-dynload/_dbm);
 * - the demo extension modules (xxlimited, xxsubtype).
 */
const PYTHON_EXCLUDES = picomatch(
  [
    'test/**',
    'test',
    '**/test/**',
    '**/tests/**',
    'idlelib/**',
    'tkinter/**',
    'turtledemo/**',
    'turtle.py',
    'ensurepip/**',
    'lib2to3/**',
    'pydoc_data/**',
    'curses/**',
    'lib-dynload/_curses*',
    'lib-dynload/readline*',
    'lib-dynload/_nis*',
    'lib-dynload/nis*',
    'lib-dynload/_crypt*',
    'crypt.py',
    'lib-dynload/spwd*',
    'lib-dynload/ossaudiodev*',
    'lib-dynload/audioop*',
    '**/__pycache__/**',
    'config-*/**',
    'lib-dynload/_tkinter*',
    'lib-dynload/_test*',
    'lib-dynload/xx*',
    'lib-dynload/_dbm*',
    'lib-dynload/_xxtestfuzz*',
    'lib-dynload/_ctypes_test*',
  ],
  opts,
);

/** True when `rel` (relative to the stdlib directory) is left out of the default Python keep. */
export function pythonExcluded(rel: string): boolean {
  return PYTHON_EXCLUDES(rel);
}
