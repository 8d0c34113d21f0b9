import { RunError } from '../errors.ts';

/**
 * A seccomp filter (classic BPF, seccomp(2) SECCOMP_SET_MODE_FILTER) equivalent to the container runtimes' default
 * profile for a container with every capability dropped: the syscalls that moby's default profile
 * (profiles/seccomp/default.json) does not allow, or allows only with a capability pare always drops, fail with
 * EPERM; everything else is allowed.
 *
 * Hand-written because the program is tiny, must be byte-exact for the kernel and no Node library emits classic BPF
 * (libseccomp is C; bwrap takes the compiled program on a file descriptor with `--seccomp FD`).
 *
 * Layout of the program (struct sock_filter, 8 bytes each, host byte order: u16 code, u8 jt, u8 jf, u32 k):
 *   1. load seccomp_data.arch; anything but the expected AUDIT_ARCH kills the process (a 32-bit or foreign ABI would
 *      use different syscall numbers and slip past the list);
 *   2. on x86_64, any syscall with the x32 bit (0x40000000) kills the process too: x32 reuses the 64-bit numbers with
 *      that bit set, so `nr == N` tests would miss it (libseccomp treats x32 as a separate arch for the same reason);
 *   3. one block per rule, `jeq nr` then either `ret ERRNO` or an argument test ending in `ret`;
 *   4. `ret ALLOW`.
 * Arguments are compared on their low 32 bits only: every argument tested here is an `int`/`unsigned int` in the
 * kernel (or clone's flags, whose namespace bits are all below bit 32), and comparing the full 64 bits is what let
 * TIOCSTI through with high bits set (CVE-2019-10063).
 *
 * Decisions that differ from docker's default (documented in src/run/README.md):
 *   - `ptrace` is denied. Docker allows it on kernels ≥ 4.8; a hardened runtime image should not debug other
 *     processes, and process_vm_readv/writev, kcmp and pidfd_getfd (which docker gates on CAP_SYS_PTRACE) are denied
 *     already.
 *   - `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)` are denied (after flatpak): without `--new-session`, a sandbox on the
 *     user's terminal could otherwise push keystrokes into the shell that started it.
 *   - `clone3` gets ENOSYS, as in docker: its flags live in a struct BPF cannot read, and ENOSYS makes glibc fall back
 *     to `clone`, whose flags are checked.
 */

// linux/bpf_common.h
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_RET_K = 0x06;

// linux/seccomp.h
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
// offsets in struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number) => 16 + 8 * i; // little-endian: low word first

/** Linux errno values used by the filter (asm-generic/errno-base.h). */
export const EPERM = 1;
export const ENOSYS = 38;

/** The kernel's classic-BPF limit (BPF_MAXINSNS). */
export const MAX_BPF_INSNS = 4096;

/** x86_64's x32 ABI marker bit in the syscall number (asm/unistd.h __X32_SYSCALL_BIT). */
export const X32_SYSCALL_BIT = 0x40000000;

export type SeccompArch = 'x86_64' | 'aarch64';

/** linux/audit.h: AUDIT_ARCH_X86_64 = EM_X86_64|64BIT|LE, AUDIT_ARCH_AARCH64 = EM_AARCH64|64BIT|LE. */
export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };

/**
 * Syscall numbers, from the kernel's arch/x86/entry/syscalls/syscall_64.tbl (x86_64) and
 * include/uapi/asm-generic/unistd.h (aarch64). A name missing for an arch does not exist there (aarch64 has no
 * iopl, ioperm, uselib, ustat, sysfs, _sysctl or the pre-2.6 module calls).
 */
export const SYSCALLS: Readonly<Record<SeccompArch, Readonly<Record<string, number>>>> = {
  x86_64: {
    _sysctl: 156,
    acct: 163,
    add_key: 248,
    bpf: 321,
    chroot: 161,
    clock_adjtime: 305,
    clock_settime: 227,
    clone: 56,
    clone3: 435,
    create_module: 174,
    delete_module: 176,
    fanotify_init: 300,
    finit_module: 313,
    fsconfig: 431,
    fsmount: 432,
    fsopen: 430,
    fspick: 433,
    get_kernel_syms: 177,
    get_mempolicy: 239,
    init_module: 175,
    io_uring_enter: 426,
    io_uring_register: 427,
    io_uring_setup: 425,
    ioctl: 16,
    ioperm: 173,
    iopl: 172,
    kcmp: 312,
    kexec_file_load: 320,
    kexec_load: 246,
    keyctl: 250,
    lookup_dcookie: 212,
    mbind: 237,
    mount: 165,
    mount_setattr: 442,
    move_mount: 429,
    move_pages: 279,
    name_to_handle_at: 303,
    nfsservctl: 180,
    open_by_handle_at: 304,
    open_tree: 428,
    perf_event_open: 298,
    personality: 135,
    pidfd_getfd: 438,
    pivot_root: 155,
    process_madvise: 440,
    process_vm_readv: 310,
    process_vm_writev: 311,
    ptrace: 101,
    query_module: 178,
    quotactl: 179,
    quotactl_fd: 443,
    reboot: 169,
    request_key: 249,
    set_mempolicy: 238,
    set_mempolicy_home_node: 450,
    setdomainname: 171,
    sethostname: 170,
    setns: 308,
    settimeofday: 164,
    socket: 41,
    swapoff: 168,
    swapon: 167,
    sysfs: 139,
    syslog: 103,
    umount2: 166,
    unshare: 272,
    uselib: 134,
    userfaultfd: 323,
    ustat: 136,
    vhangup: 153,
  },
  aarch64: {
    acct: 89,
    add_key: 217,
    bpf: 280,
    chroot: 51,
    clock_adjtime: 266,
    clock_settime: 112,
    clone: 220,
    clone3: 435,
    delete_module: 106,
    fanotify_init: 262,
    finit_module: 273,
    fsconfig: 431,
    fsmount: 432,
    fsopen: 430,
    fspick: 433,
    get_mempolicy: 236,
    init_module: 105,
    io_uring_enter: 426,
    io_uring_register: 427,
    io_uring_setup: 425,
    ioctl: 29,
    kcmp: 272,
    kexec_file_load: 294,
    kexec_load: 104,
    keyctl: 219,
    lookup_dcookie: 18,
    mbind: 235,
    mount: 40,
    mount_setattr: 442,
    move_mount: 429,
    move_pages: 239,
    name_to_handle_at: 264,
    nfsservctl: 42,
    open_by_handle_at: 265,
    open_tree: 428,
    perf_event_open: 241,
    personality: 92,
    pidfd_getfd: 438,
    pivot_root: 41,
    process_madvise: 440,
    process_vm_readv: 270,
    process_vm_writev: 271,
    ptrace: 117,
    quotactl: 60,
    quotactl_fd: 443,
    reboot: 142,
    request_key: 218,
    set_mempolicy: 237,
    set_mempolicy_home_node: 450,
    setdomainname: 162,
    sethostname: 161,
    setns: 268,
    settimeofday: 170,
    socket: 198,
    swapoff: 225,
    swapon: 224,
    syslog: 116,
    umount2: 39,
    unshare: 97,
    userfaultfd: 282,
    vhangup: 58,
  },
};

// linux/sched.h: the namespace flags clone(2) must not carry without CAP_SYS_ADMIN (moby's mask 0x7E020000).
const CLONE_NEWNS = 0x00020000;
const CLONE_NEWCGROUP = 0x02000000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;
export const CLONE_NAMESPACE_FLAGS =
  CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
// personality(2) values moby allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query).
const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];
const AF_VSOCK = 40;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;

/** One entry of the deny-list. */
export type SeccompRule =
  /** The syscall always fails with `errno`. */
  | { readonly kind: 'deny'; readonly syscall: string; readonly errno: number; readonly why: string }
  /** Fails with EPERM when argument `arg` has any bit of `mask` set. */
  | {
      readonly kind: 'deny-if-any-bit';
      readonly syscall: string;
      readonly arg: number;
      readonly mask: number;
      readonly why: string;
    }
  /** Fails with EPERM when argument `arg` is one of `values`. */
  | {
      readonly kind: 'deny-if-equal';
      readonly syscall: string;
      readonly arg: number;
      readonly values: readonly number[];
      readonly why: string;
    }
  /** Fails with EPERM unless argument `arg` is one of `values`. */
  | {
      readonly kind: 'deny-unless-equal';
      readonly syscall: string;
      readonly arg: number;
      readonly values: readonly number[];
      readonly why: string;
    };

const deny = (why: string, ...names: string[]): SeccompRule[] =>
  names.map((syscall) => ({ kind: 'deny', syscall, errno: EPERM, why }));

/**
 * The default deny-list, grouped by the reason moby gives (the capability it gates the call on, or "never allowed").
 * Names that do not exist on an arch are skipped for it.
 */
export const DEFAULT_RULES: readonly SeccompRule[] = Object.freeze([
  ...deny('kernel keyring is not namespaced', 'add_key', 'keyctl', 'request_key'),
  ...deny(
    'namespace and mount manipulation (CAP_SYS_ADMIN)',
    'unshare',
    'setns',
    'mount',
    'umount2',
    'pivot_root',
    'fsopen',
    'fsconfig',
    'fsmount',
    'fspick',
    'move_mount',
    'open_tree',
    'mount_setattr',
    'chroot',
  ),
  ...deny(
    'kernel modules (CAP_SYS_MODULE)',
    'init_module',
    'finit_module',
    'delete_module',
    'create_module',
    'get_kernel_syms',
    'query_module',
  ),
  ...deny(
    'replacing the running kernel or rebooting (CAP_SYS_BOOT)',
    'kexec_load',
    'kexec_file_load',
    'reboot',
  ),
  ...deny(
    'BPF programs and performance monitoring leak kernel state (CAP_BPF, CAP_PERFMON)',
    'bpf',
    'perf_event_open',
    'lookup_dcookie',
  ),
  ...deny(
    'tracing or reading other processes (CAP_SYS_PTRACE)',
    'ptrace',
    'process_vm_readv',
    'process_vm_writev',
    'kcmp',
    'pidfd_getfd',
    'process_madvise',
  ),
  ...deny('userfaultfd is a common exploit primitive', 'userfaultfd'),
  ...deny(
    'io_uring bypasses syscall filtering and was a frequent source of kernel bugs',
    'io_uring_setup',
    'io_uring_enter',
    'io_uring_register',
  ),
  ...deny(
    'file handles bypass path-based checks (CAP_DAC_READ_SEARCH)',
    'open_by_handle_at',
    'name_to_handle_at',
  ),
  ...deny('system time (CAP_SYS_TIME)', 'settimeofday', 'clock_settime', 'clock_adjtime'),
  ...deny(
    'swap, quotas, accounting, hostname, tty hangup, kernel log (CAP_SYS_ADMIN, CAP_SYS_PACCT, CAP_SYSLOG, CAP_SYS_TTY_CONFIG)',
    'swapon',
    'swapoff',
    'quotactl',
    'quotactl_fd',
    'acct',
    'sethostname',
    'setdomainname',
    'vhangup',
    'syslog',
    'fanotify_init',
  ),
  ...deny(
    'NUMA policy (CAP_SYS_NICE)',
    'mbind',
    'set_mempolicy',
    'set_mempolicy_home_node',
    'get_mempolicy',
    'move_pages',
  ),
  ...deny('I/O port access (CAP_SYS_RAWIO)', 'iopl', 'ioperm'),
  ...deny('obsolete calls with a history of bugs', 'uselib', 'ustat', 'sysfs', '_sysctl', 'nfsservctl'),
  {
    kind: 'deny',
    syscall: 'clone3',
    errno: ENOSYS,
    why: 'flags are in memory BPF cannot read; ENOSYS makes libc fall back to clone',
  },
  {
    kind: 'deny-if-any-bit',
    syscall: 'clone',
    arg: 0,
    mask: CLONE_NAMESPACE_FLAGS,
    why: 'new namespaces (CAP_SYS_ADMIN)',
  },
  {
    kind: 'deny-unless-equal',
    syscall: 'personality',
    arg: 0,
    values: PERSONALITY_ALLOWED,
    why: 'execution domains other than Linux (ASLR off, READ_IMPLIES_EXEC)',
  },
  {
    kind: 'deny-if-equal',
    syscall: 'socket',
    arg: 0,
    values: [AF_VSOCK],
    why: 'AF_VSOCK reaches the hypervisor and host, outside the network namespace',
  },
  {
    kind: 'deny-if-equal',
    syscall: 'ioctl',
    arg: 1,
    values: [TIOCSTI, TIOCLINUX],
    why: 'faking terminal input to the parent shell',
  },
]);

/** A classic-BPF instruction (struct sock_filter). */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

const stmt = (code: number, k: number): SockFilter => ({ code, jt: 0, jf: 0, k: k >>> 0 });
const jump = (code: number, k: number, jt: number, jf: number): SockFilter => ({ code, jt, jf, k: k >>> 0 });
const ret = (k: number) => stmt(BPF_RET_K, k);

/** Maps a Node/OCI architecture name to the seccomp arch, or undefined when the sandbox does not support it. */
export function seccompArch(arch: string): SeccompArch | undefined {
  if (arch === 'x64' || arch === 'amd64' || arch === 'x86_64') return 'x86_64';
  if (arch === 'arm64' || arch === 'aarch64') return 'aarch64';
  return undefined;
}

/**
 * Returns the filter's instructions for `arch` (default rules: DEFAULT_RULES). Pure; see `encodeFilter` for the
 * bytes. Throws RUN_ARCH_UNSUPPORTED for a rule whose syscall is unknown on every supported arch (a typo).
 */
export function seccompFilter(
  arch: SeccompArch,
  rules: readonly SeccompRule[] = DEFAULT_RULES,
): SockFilter[] {
  const table = SYSCALLS[arch];
  const prog: SockFilter[] = [
    stmt(BPF_LD_W_ABS, OFF_ARCH),
    jump(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET_KILL_PROCESS),
    stmt(BPF_LD_W_ABS, OFF_NR),
  ];
  if (arch === 'x86_64') prog.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1), ret(SECCOMP_RET_KILL_PROCESS));
  const errno = (e: number) => ret(SECCOMP_RET_ERRNO | e);
  for (const rule of rules) {
    if (!Object.values(SYSCALLS).some((t) => rule.syscall in t)) {
      throw new RunError(
        'RUN_ARCH_UNSUPPORTED',
        `cannot build seccomp filter: unknown syscall ${JSON.stringify(rule.syscall)}`,
      );
    }
    const nr = table[rule.syscall];
    if (nr === undefined) continue;
    let body: SockFilter[];
    switch (rule.kind) {
      case 'deny':
        body = [errno(rule.errno)];
        break;
      case 'deny-if-any-bit':
        body = [
          stmt(BPF_LD_W_ABS, argLow(rule.arg)),
          jump(BPF_JMP_JSET_K, rule.mask, 0, 1),
          errno(EPERM),
          ret(SECCOMP_RET_ALLOW),
        ];
        break;
      case 'deny-if-equal': {
        // n tests, then ALLOW at n, ERRNO at n+1: test i jumps n-i forward on a match.
        const n = rule.values.length;
        body = [
          stmt(BPF_LD_W_ABS, argLow(rule.arg)),
          ...rule.values.map((v, i) => jump(BPF_JMP_JEQ_K, v, n - i, 0)),
          ret(SECCOMP_RET_ALLOW),
          errno(EPERM),
        ];
        break;
      }
      case 'deny-unless-equal': {
        // n tests, then ERRNO at n, ALLOW at n+1.
        const n = rule.values.length;
        body = [
          stmt(BPF_LD_W_ABS, argLow(rule.arg)),
          ...rule.values.map((v, i) => jump(BPF_JMP_JEQ_K, v, n - i, 0)),
          errno(EPERM),
          ret(SECCOMP_RET_ALLOW),
        ];
        break;
      }
    }
    if (body.length > 255)
      throw new RunError(
        'RUN_ARCH_UNSUPPORTED',
        `cannot build seccomp filter: rule for ${rule.syscall} is too long`,
      );
    // The test on nr skips the whole body when it does not match; the body always ends in a return.
    prog.push(jump(BPF_JMP_JEQ_K, nr, 0, body.length), ...body);
  }
  prog.push(ret(SECCOMP_RET_ALLOW));
  if (prog.length > MAX_BPF_INSNS)
    throw new RunError(
      'RUN_ARCH_UNSUPPORTED',
      `cannot build seccomp filter: ${prog.length} instructions is over the kernel's ${MAX_BPF_INSNS}`,
    );
  return prog;
}

/** Returns the bytes of `prog` as an array of struct sock_filter in little-endian order (both supported arches are LE). */
export function encodeFilter(prog: readonly SockFilter[]): Uint8Array {
  const out = new Uint8Array(prog.length * 8);
  const v = new DataView(out.buffer);
  prog.forEach((ins, i) => {
    v.setUint16(i * 8, ins.code, true);
    v.setUint8(i * 8 + 2, ins.jt);
    v.setUint8(i * 8 + 3, ins.jf);
    v.setUint32(i * 8 + 4, ins.k, true);
  });
  return out;
}

/** Returns the encoded default filter for `arch` (what `pare run` hands to `bwrap --seccomp FD`). */
export function seccompProgram(arch: SeccompArch, rules: readonly SeccompRule[] = DEFAULT_RULES): Uint8Array {
  return encodeFilter(seccompFilter(arch, rules));
}
