import { describe, expect, it } from 'vitest';
import {
  checkSandboxSupport,
  type HostProbe,
  SYSCTL_APPARMOR_USERNS,
  SYSCTL_MAX_USERNS,
  SYSCTL_USERNS_CLONE,
} from './support.ts';

function host(
  over: Partial<{ sysctl: Record<string, string>; bwrap: string | undefined; setuid: boolean; euid: number }>,
): HostProbe {
  const sysctl = over.sysctl ?? {};
  return {
    sysctl: (p) => sysctl[p],
    which: () => ('bwrap' in over ? over.bwrap : '/usr/bin/bwrap'),
    isSetuidRoot: () => over.setuid ?? false,
    euid: () => over.euid ?? 1000,
  };
}

describe('checkSandboxSupport', () => {
  it('returns the bwrap path on a host with user namespaces', () => {
    expect(
      checkSandboxSupport(host({ sysctl: { [SYSCTL_MAX_USERNS]: '63000', [SYSCTL_USERNS_CLONE]: '1' } })),
    ).toBe('/usr/bin/bwrap');
  });

  describe('when bwrap is missing', () => {
    it('throws RUN_BWRAP_MISSING with how to install it', () => {
      expect(() => checkSandboxSupport(host({ bwrap: undefined }))).toThrow(
        expect.objectContaining({
          code: 'RUN_BWRAP_MISSING',
          hint: expect.stringContaining('apt-get install bubblewrap'),
        }),
      );
    });
  });

  describe('when user namespaces are disabled', () => {
    it.each([
      [SYSCTL_MAX_USERNS, '0', 'user.max_user_namespaces=15000'],
      [SYSCTL_USERNS_CLONE, '0', 'kernel.unprivileged_userns_clone=1'],
      [SYSCTL_APPARMOR_USERNS, '1', 'kernel.apparmor_restrict_unprivileged_userns=0'],
    ])('%s = %s throws RUN_USERNS_DISABLED saying to set %s', (path, value, fix) => {
      expect(() => checkSandboxSupport(host({ sysctl: { [path]: value } }))).toThrow(
        expect.objectContaining({ code: 'RUN_USERNS_DISABLED', path, hint: expect.stringContaining(fix) }),
      );
    });

    it('lets root and a setuid bwrap through the unprivileged-only restrictions', () => {
      const restricted = { [SYSCTL_USERNS_CLONE]: '0', [SYSCTL_APPARMOR_USERNS]: '1' };
      expect(checkSandboxSupport(host({ sysctl: restricted, euid: 0 }))).toBe('/usr/bin/bwrap');
      expect(checkSandboxSupport(host({ sysctl: restricted, setuid: true }))).toBe('/usr/bin/bwrap');
    });

    it('stops root too when max_user_namespaces is 0', () => {
      expect(() => checkSandboxSupport(host({ sysctl: { [SYSCTL_MAX_USERNS]: '0' }, euid: 0 }))).toThrow(
        expect.objectContaining({ code: 'RUN_USERNS_DISABLED' }),
      );
    });
  });
});
