import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RunError } from '../errors.ts';

/**
 * Whether this host can run a sandbox: bubblewrap on PATH, and (for a non-root caller without a setuid bwrap) user
 * namespaces enabled. The facts are read through a one-method interface so tests can describe any host.
 */

/** Reads the host facts support checks need; the default reads the real /proc and PATH. */
export interface HostProbe {
  /** Contents of a /proc/sys file, trimmed, or undefined when it does not exist. */
  sysctl(path: string): string | undefined;
  /** Absolute path of an executable on PATH, or undefined. */
  which(name: string): string | undefined;
  /** True when `path` is a setuid-root executable. */
  isSetuidRoot(path: string): boolean;
  /** The caller's effective uid. */
  euid(): number;
}

export const hostProbe: HostProbe = {
  sysctl(path) {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  which(name) {
    const executable = (p: string) => {
      try {
        accessSync(p, constants.X_OK);
        return statSync(p).isFile();
      } catch {
        return false;
      }
    };
    if (name.includes('/')) return executable(name) ? name : undefined;
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue;
      const p = join(dir, name);
      if (executable(p)) return p;
    }
    return undefined;
  },
  isSetuidRoot(path) {
    try {
      const st = statSync(path);
      return st.uid === 0 && (st.mode & 0o4000) !== 0;
    } catch {
      return false;
    }
  },
  euid: () => process.geteuid?.() ?? 0,
};

export const SYSCTL_USERNS_CLONE = '/proc/sys/kernel/unprivileged_userns_clone';
export const SYSCTL_MAX_USERNS = '/proc/sys/user/max_user_namespaces';
export const SYSCTL_APPARMOR_USERNS = '/proc/sys/kernel/apparmor_restrict_unprivileged_userns';

/**
 * Returns the path of bwrap (`PARE_BWRAP`, else `bwrap` on PATH) after checking the host can run it. Throws
 * RUN_BWRAP_MISSING or RUN_USERNS_DISABLED, each with a `hint` saying how to fix the host.
 */
export function checkSandboxSupport(
  probe: HostProbe = hostProbe,
  bwrapName = process.env.PARE_BWRAP || 'bwrap',
): string {
  const bwrap = probe.which(bwrapName);
  if (!bwrap) {
    throw new RunError(
      'RUN_BWRAP_MISSING',
      `cannot run sandbox: bubblewrap ("${bwrapName}") is not installed or not on PATH`,
      {
        hint: 'install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) or set PARE_BWRAP to its path',
      },
    );
  }
  // max_user_namespaces = 0 stops everyone, root included.
  if (probe.sysctl(SYSCTL_MAX_USERNS) === '0') {
    throw new RunError(
      'RUN_USERNS_DISABLED',
      'cannot run sandbox: user namespaces are disabled (user.max_user_namespaces = 0)',
      {
        path: SYSCTL_MAX_USERNS,
        hint: 'enable them: sudo sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/)',
      },
    );
  }
  // The other two only restrict callers without CAP_SYS_ADMIN; a setuid bwrap does not need user namespaces at all.
  if (probe.euid() === 0 || probe.isSetuidRoot(bwrap)) return bwrap;
  if (probe.sysctl(SYSCTL_USERNS_CLONE) === '0') {
    throw new RunError(
      'RUN_USERNS_DISABLED',
      'cannot run sandbox: unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)',
      {
        path: SYSCTL_USERNS_CLONE,
        hint: 'enable them: sudo sysctl -w kernel.unprivileged_userns_clone=1 (persist it in /etc/sysctl.d/)',
      },
    );
  }
  if (probe.sysctl(SYSCTL_APPARMOR_USERNS) === '1') {
    throw new RunError(
      'RUN_USERNS_DISABLED',
      'cannot run sandbox: AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)',
      {
        path: SYSCTL_APPARMOR_USERNS,
        hint:
          `allow bwrap with an AppArmor profile (/etc/apparmor.d/bwrap: "abi <abi/4.0>, include <tunables/global> profile bwrap ${bwrap} flags=(unconfined) { userns, }", ` +
          'then sudo apparmor_parser -r /etc/apparmor.d/bwrap), or sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
      },
    );
  }
  return bwrap;
}

/**
 * Turns bwrap's own start-up failure (its stderr, exit code 1 before the command ran) into a RunError when it is a
 * namespace permission problem the checks above could not foresee (e.g. a seccomp or LSM policy on the host).
 */
export function explainBwrapFailure(stderr: string): RunError | undefined {
  if (
    /No permissions to creat(e|ing) new namespace|Operation not permitted.*(namespace|uid map)|setting up uid map/i.test(
      stderr,
    )
  ) {
    return new RunError(
      'RUN_USERNS_DISABLED',
      `cannot run sandbox: bubblewrap could not create a user namespace: ${stderr.trim()}`,
      {
        hint: `check ${SYSCTL_MAX_USERNS}, ${SYSCTL_USERNS_CLONE} and ${SYSCTL_APPARMOR_USERNS}; inside a container, the outer runtime must allow user namespaces`,
      },
    );
  }
  return undefined;
}
