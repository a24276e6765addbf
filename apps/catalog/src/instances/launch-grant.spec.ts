import { describe, expect, it } from 'vitest';
import { LaunchGrantError, LaunchGrants } from './launch-grant.js';

const claims = {
  instanceId: 'i-0123456789abcdef0',
  imageId: 'ami-0123456789abcdef0',
  manifestLocation: 'bundles/ami-0123456789abcdef0/manifest.xml',
  manifestDigest: 'd'.repeat(64),
};
const secret = 's'.repeat(40);

describe('LaunchGrants', () => {
  it('issues a grant that verifies with the same secret until it expires', () => {
    const grants = new LaunchGrants(secret, 300);
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const grant = grants.issue(claims, now);
    expect(grant).toMatch(/^lg1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(grants.verify(grant, now + 299_000)).toEqual({ ...claims, exp: now / 1000 + 300 });
    expect(() => grants.verify(grant, now + 300_000)).toThrow(/expired/);
  });

  it('refuses another secret, a changed payload, a changed signature and garbage', () => {
    const grant = new LaunchGrants(secret, 300).issue(claims);
    const grants = new LaunchGrants(secret, 300);
    expect(() => new LaunchGrants('t'.repeat(40), 300).verify(grant)).toThrow(LaunchGrantError);
    const [prefix, payload, signature] = grant.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...claims, imageId: 'ami-fffffffffffffffff', exp: 9e9 })).toString('base64url');
    expect(() => grants.verify(`${prefix}.${forged}.${signature}`)).toThrow(/signature/);
    expect(() => grants.verify(`${prefix}.${payload}.${signature.slice(0, -2)}AA`)).toThrow(/signature/);
    for (const bad of ['', 'lg1', 'lg2.a.b', `${grant}.x`]) expect(() => grants.verify(bad)).toThrow(LaunchGrantError);
  });

  it('uses a random secret per instance when none is configured', () => {
    const grant = new LaunchGrants(undefined, 300).issue(claims);
    expect(() => new LaunchGrants(undefined, 300).verify(grant)).toThrow(/signature/);
  });
});
