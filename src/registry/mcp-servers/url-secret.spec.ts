import { SecretBox, SecretRing } from './secret-box.js';
import { maskUrl, openUrl, sealUrl } from './url-secret.js';

describe('MCP server URL secrets', () => {
  it('masks every query value and keeps the names', () => {
    expect(maskUrl('https://mcp.example.com/sse?api_key=s3cret&region=eu')).toBe('https://mcp.example.com/sse?api_key=***&region=***');
    expect(maskUrl('https://mcp.example.com/sse?flag')).toBe('https://mcp.example.com/sse?flag=***');
    expect(maskUrl('https://mcp.example.com/mcp')).toBe('https://mcp.example.com/mcp');
  });

  it('seals the whole URL bound to its server, and opens it with the previous key during a rotation', () => {
    const old = SecretBox.fromSecret('an old secret key that is 32+ characters');
    const next = SecretBox.fromSecret('a new secret key that is also 32+ chars');
    const sealed = sealUrl(old, 'github', 'https://mcp.example.com/sse?api_key=s3cret');
    expect(sealed.masked).toBe('https://mcp.example.com/sse?api_key=***');
    expect(sealed.secret).not.toContain('s3cret');
    expect(openUrl(old, 'github', { url: sealed.masked, secret: sealed.secret })).toBe('https://mcp.example.com/sse?api_key=s3cret');
    expect(() => openUrl(old, 'other', { url: sealed.masked, secret: sealed.secret })).toThrow();
    const ring = new SecretRing(next, [old]);
    expect(openUrl(ring, 'github', { url: sealed.masked, secret: sealed.secret })).toBe('https://mcp.example.com/sse?api_key=s3cret');
    expect(ring.isCurrent(sealed.secret!, 'mcp_server_url:github')).toBe(false);
    expect(() => openUrl(new SecretRing(next), 'github', { url: sealed.masked, secret: sealed.secret })).toThrow();
    expect(sealUrl(ring, 'plain', 'https://mcp.example.com/mcp')).toEqual({ masked: 'https://mcp.example.com/mcp', secret: null });
  });
});
