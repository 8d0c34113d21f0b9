import { describe, expect, it } from 'vitest';
import { OciError } from '../errors.ts';
import { parsePlatform } from './model.ts';

describe('parsePlatform', () => {
  it('reads os/arch[/variant]', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
  });
  it.each(['linux', '/amd64', 'linux/arm/v7/x'])('refuses %j with OCI_PLATFORM_INVALID', (s) => {
    let caught: unknown;
    try {
      parsePlatform(s);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(OciError);
    expect(caught).toMatchObject({
      code: 'OCI_PLATFORM_INVALID',
      message: `cannot parse platform ${JSON.stringify(s)}: want os/arch[/variant]`,
    });
  });
});
