import { hashPassword, newApiKey, sha256, verifyPassword } from './secrets.js';

describe('secrets', () => {
  it('hashes passwords with a salt and verifies them', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).not.toBe(b);
    await expect(verifyPassword('correct horse', a)).resolves.toBe(true);
    await expect(verifyPassword('wrong horse', a)).resolves.toBe(false);
    await expect(verifyPassword('x', 'garbage')).resolves.toBe(false);
  });

  it('makes distinct API keys whose hash is not the key', () => {
    const key = newApiKey();
    expect(key).toMatch(/^ar_[A-Za-z0-9_-]{43}$/);
    expect(newApiKey()).not.toBe(key);
    expect(sha256(key)).not.toContain(key.slice(3));
  });
});
