/**
 * The account databases of a distroless-style root: no login shells, no passwords, three users. Debian's base-passwd
 * would create these from its postinst (which we do not run), with many more system accounts; a minimal image needs
 * only root, the unprivileged default user and nobody (the overflow id the kernel shows for unmapped ids).
 */

/** uid/gid of the default unprivileged user, as in distroless. */
export const NONROOT_ID = 65532;
export const NOBODY_ID = 65534;
export const NONROOT_HOME = '/home/nonroot';

/** Returns /etc/passwd: root 0, nonroot 65532 (home /home/nonroot), nobody 65534; every shell /sbin/nologin. */
export function passwdFile(): string {
  return [
    'root:x:0:0:root:/root:/sbin/nologin',
    `nonroot:x:${NONROOT_ID}:${NONROOT_ID}:nonroot:${NONROOT_HOME}:/sbin/nologin`,
    `nobody:x:${NOBODY_ID}:${NOBODY_ID}:nobody:/nonexistent:/sbin/nologin`,
    '',
  ].join('\n');
}

/** Returns /etc/group: root 0, nonroot 65532, nogroup 65534 (Debian's name for the overflow group). */
export function groupFile(): string {
  return ['root:x:0:', `nonroot:x:${NONROOT_ID}:`, `nogroup:x:${NOBODY_ID}:`, ''].join('\n');
}

/** Returns an /etc/nsswitch.conf for a root with only files (no NIS, no systemd, no mDNS modules) plus DNS. */
export function nsswitchFile(): string {
  return [
    'passwd:         files',
    'group:          files',
    'shadow:         files',
    'gshadow:        files',
    '',
    'hosts:          files dns',
    'networks:       files',
    '',
    'protocols:      files',
    'services:       files',
    'ethers:         files',
    'rpc:            files',
    '',
  ].join('\n');
}
