import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { peersRequired } from '../../test/helpers/peers.ts';
import {
  AUDIT_ARCH,
  CLONE_NAMESPACE_FLAGS,
  DEFAULT_RULES,
  ENOSYS,
  EPERM,
  encodeFilter,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  type SeccompArch,
  type SockFilter,
  SYSCALLS,
  seccompFilter,
  seccompProgram,
} from './seccomp.ts';

/**
 * A classic-BPF interpreter for the instructions seccomp filters may use, written from the kernel's
 * net/core/filter.c semantics for the subset pare emits (LD W ABS, JEQ/JGE/JSET K, RET K). Running the filter here
 * checks the jump arithmetic on every rule without a kernel; test/run proves the same bytes in the real one.
 */
function runFilter(bytes: Uint8Array, data: { nr: number; arch: number; args?: number[] }): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mem = new DataView(new ArrayBuffer(64));
  mem.setInt32(0, data.nr, true);
  mem.setUint32(4, data.arch, true);
  for (const [i, a] of (data.args ?? []).entries()) mem.setBigUint64(16 + 8 * i, BigInt(a), true);
  let pc = 0;
  let acc = 0;
  for (let steps = 0; steps < 10_000; steps++) {
    if (pc * 8 >= bytes.length) throw new Error(`fell off the program at ${pc}`);
    const code = v.getUint16(pc * 8, true);
    const jt = v.getUint8(pc * 8 + 2);
    const jf = v.getUint8(pc * 8 + 3);
    const k = v.getUint32(pc * 8 + 4, true);
    pc++;
    switch (code) {
      case 0x20:
        if (k % 4 !== 0 || k + 4 > 64) throw new Error(`bad load offset ${k}`);
        acc = mem.getUint32(k, true);
        break;
      case 0x15:
        pc += acc === k ? jt : jf;
        break;
      case 0x35:
        pc += acc >= k ? jt : jf;
        break;
      case 0x45:
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unknown opcode 0x${code.toString(16)}`);
    }
  }
  throw new Error('no return');
}

const ARCHES: SeccompArch[] = ['x86_64', 'aarch64'];

describe('seccompProgram', () => {
  describe.each(ARCHES)('for %s', (arch) => {
    const prog = seccompProgram(arch);
    const nr = SYSCALLS[arch];
    const run = (name: string, args: number[] = []) =>
      runFilter(prog, { nr: nr[name]!, arch: AUDIT_ARCH[arch], args });

    it('encodes 8 bytes per instruction and stays under the kernel limit', () => {
      expect(prog.length % 8).toBe(0);
      expect(prog.length / 8).toBeLessThan(4096);
    });

    it('kills a process calling with another architecture', () => {
      const other = arch === 'x86_64' ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
      expect(runFilter(prog, { nr: 0, arch: other })).toBe(SECCOMP_RET_KILL_PROCESS);
      expect(runFilter(prog, { nr: 0, arch: 0x40000003 /* AUDIT_ARCH_I386 */ })).toBe(
        SECCOMP_RET_KILL_PROCESS,
      );
    });

    it.each([
      'keyctl',
      'add_key',
      'unshare',
      'mount',
      'umount2',
      'pivot_root',
      'kexec_load',
      'init_module',
      'bpf',
      'perf_event_open',
      'userfaultfd',
      'open_by_handle_at',
      'swapon',
      'reboot',
      'settimeofday',
      'clock_settime',
      'ptrace',
      'setns',
    ])('returns EPERM for %s', (name) => {
      expect(run(name)).toBe(SECCOMP_RET_ERRNO | EPERM);
    });

    it('returns ENOSYS for clone3 so libc falls back to clone', () => {
      expect(run('clone3')).toBe(SECCOMP_RET_ERRNO | ENOSYS);
    });

    it('allows clone for threads and fork but not for new namespaces', () => {
      expect(run('clone', [0x3d0f00 /* glibc pthread_create flags */])).toBe(SECCOMP_RET_ALLOW);
      expect(run('clone', [0x01200011 /* fork: CHILD_SETTID|CHILD_CLEARTID|SIGCHLD */])).toBe(
        SECCOMP_RET_ALLOW,
      );
      for (const bit of [
        0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
      ]) {
        expect(run('clone', [0x11 | bit])).toBe(SECCOMP_RET_ERRNO | EPERM);
      }
    });

    it('allows personality queries and PER_LINUX, denies the rest', () => {
      for (const ok of [0, 8, 0x20000, 0x20008, 0xffffffff])
        expect(run('personality', [ok])).toBe(SECCOMP_RET_ALLOW);
      expect(run('personality', [0x0040000 /* ADDR_NO_RANDOMIZE */])).toBe(SECCOMP_RET_ERRNO | EPERM);
      expect(run('personality', [0x0400000 /* READ_IMPLIES_EXEC */])).toBe(SECCOMP_RET_ERRNO | EPERM);
    });

    it('denies AF_VSOCK sockets only', () => {
      expect(run('socket', [2, 1, 0])).toBe(SECCOMP_RET_ALLOW);
      expect(run('socket', [40, 1, 0])).toBe(SECCOMP_RET_ERRNO | EPERM);
    });

    it('denies TIOCSTI even with high bits set in the request (CVE-2019-10063)', () => {
      expect(run('ioctl', [0, 0x5401 /* TCGETS */])).toBe(SECCOMP_RET_ALLOW);
      expect(run('ioctl', [0, 0x5412])).toBe(SECCOMP_RET_ERRNO | EPERM);
      expect(run('ioctl', [0, 0x1_0000_5412])).toBe(SECCOMP_RET_ERRNO | EPERM);
    });

    it('allows every syscall number not on the list', () => {
      const denied = new Set(DEFAULT_RULES.map((r) => nr[r.syscall]).filter((n) => n !== undefined));
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 1023 }), (n) => {
          fc.pre(!denied.has(n));
          expect(runFilter(prog, { nr: n, arch: AUDIT_ARCH[arch] })).toBe(SECCOMP_RET_ALLOW);
        }),
      );
    });
  });

  describe('when a syscall carries the x32 bit on x86_64', () => {
    it('kills the process (x32 keyctl would otherwise not match nr 250)', () => {
      expect(runFilter(seccompProgram('x86_64'), { nr: 0x40000000 | 250, arch: AUDIT_ARCH.x86_64 })).toBe(
        SECCOMP_RET_KILL_PROCESS,
      );
    });
  });

  describe('when a rule names an unknown syscall', () => {
    it('throws RUN_ARCH_UNSUPPORTED', () => {
      expect(() =>
        seccompFilter('x86_64', [{ kind: 'deny', syscall: 'keyctI', errno: 1, why: 'typo' }]),
      ).toThrow(expect.objectContaining({ code: 'RUN_ARCH_UNSUPPORTED' }));
    });
  });

  it('checks every namespace flag in the clone mask', () => {
    expect(CLONE_NAMESPACE_FLAGS).toBe(0x7e020000);
  });

  it('encodes struct sock_filter little-endian', () => {
    const ins: SockFilter[] = [{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }];
    expect([...encodeFilter(ins)]).toEqual([0x15, 0, 1, 2, 0x3e, 0, 0, 0xc0]);
  });
});

describe('SYSCALLS', () => {
  // The tables are written out so pare runs anywhere; where the kernel headers are installed, they must agree.
  const headers: [SeccompArch, string, RegExp][] = [
    ['x86_64', '/usr/include/x86_64-linux-gnu/asm/unistd_64.h', /^#define __NR_(\w+)\s+(\d+)$/gm],
    ['aarch64', '/usr/include/asm-generic/unistd.h', /^#define __NR(?:3264)?_(\w+)\s+(\d+)$/gm],
  ];
  it.for(headers)('agrees with the %s kernel header', ([arch, file, re], ctx) => {
    if (!existsSync(file)) {
      // linux-libc-dev has the headers; CI installs it (with libc6-dev), so there a missing header fails.
      const reason = `${file} is not installed (Debian linux-libc-dev): cannot compare the ${arch} table with it`;
      if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
      console.warn(`[skip] ${reason}`);
      ctx.skip();
    }
    const fromHeader = new Map(
      [...readFileSync(file, 'utf8').matchAll(re)].map((m) => [m[1]!, Number(m[2])]),
    );
    for (const [name, n] of Object.entries(SYSCALLS[arch]))
      expect([name, fromHeader.get(name)]).toEqual([name, n]);
  });
});
