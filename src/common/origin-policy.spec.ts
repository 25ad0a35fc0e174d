import { checkOrigin, claimedOrigin, isUnsafeMethod, normalizeOrigin, ownOrigin } from './origin-policy.js';

describe('origin policy (CSRF, and the Socket.IO handshake later)', () => {
  it('normalizes origins as browsers send them and rejects anything else', () => {
    expect(normalizeOrigin('HTTPS://Admin.Example.com:443')).toBe('https://admin.example.com');
    expect(normalizeOrigin('http://127.0.0.1:3000/')).toBe('http://127.0.0.1:3000');
    expect(normalizeOrigin('https://a.example/path')).toBeUndefined();
    expect(normalizeOrigin('https://a.example?x=1')).toBeUndefined();
    expect(normalizeOrigin('null')).toBeUndefined();
    expect(normalizeOrigin('ftp://a.example')).toBeUndefined();
    expect(normalizeOrigin('https://u:p@a.example')).toBeUndefined();
  });

  it('takes Origin, else the origin of Referer', () => {
    expect(claimedOrigin({ origin: 'https://a.example' })).toBe('https://a.example');
    expect(claimedOrigin({ referer: 'https://a.example/gui/page?x=1' })).toBe('https://a.example');
    expect(claimedOrigin({ origin: 'null' })).toBe('invalid');
    expect(claimedOrigin({})).toBeUndefined();
    expect(ownOrigin('https', 'Registry.example:443')).toBe('https://registry.example');
    expect(ownOrigin('http', '127.0.0.1:3000')).toBe('http://127.0.0.1:3000');
  });

  it('allows the own origin by default, exactly the list when configured, and nothing without an origin', () => {
    const req = (headers: Record<string, string>) => ({ headers, protocol: 'http', host: 'registry.local:3000' });
    expect(checkOrigin(req({ origin: 'http://registry.local:3000' }), undefined).allowed).toBe(true);
    expect(checkOrigin(req({ origin: 'https://evil.example' }), undefined)).toMatchObject({ allowed: false, origin: 'https://evil.example' });
    expect(checkOrigin(req({}), undefined)).toMatchObject({ allowed: false, reason: 'the request has no Origin or Referer header' });
    expect(checkOrigin(req({ referer: 'http://registry.local:3000/gui' }), undefined).allowed).toBe(true);
    const list = ['https://admin.example.com'];
    expect(checkOrigin(req({ origin: 'https://admin.example.com' }), list).allowed).toBe(true);
    expect(checkOrigin(req({ origin: 'http://registry.local:3000' }), list).allowed).toBe(false);
    expect(isUnsafeMethod('POST')).toBe(true);
    expect(isUnsafeMethod('GET')).toBe(false);
  });
});
