import { hashPassword, needsRehash, newApiKey, SCRYPT_PARAMS, sha256, verifyPassword } from './secrets.js';

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

  it('hashes with scrypt N=2^17, r=8, p=1 and flags older hashes for a rehash', async () => {
    expect(SCRYPT_PARAMS).toEqual({ ln: 17, r: 8, p: 1 });
    const current = await hashPassword('correct horse');
    expect(current).toMatch(/^scrypt\$ln=17,r=8,p=1\$/);
    expect(needsRehash(current)).toBe(false);
    // The first format (N=2^14, no parameters) still verifies, and asks to be replaced.
    const legacy = await hashPassword('correct horse', { ln: 14, r: 8, p: 1 });
    const [, , salt, hash] = legacy.split('$');
    const oldFormat = `scrypt$${salt}$${hash}`;
    await expect(verifyPassword('correct horse', oldFormat)).resolves.toBe(true);
    await expect(verifyPassword('wrong horse', oldFormat)).resolves.toBe(false);
    expect(needsRehash(oldFormat)).toBe(true);
    // Absurd parameters in a tampered row are refused rather than computed.
    await expect(verifyPassword('x', `scrypt$ln=30,r=8,p=1$${salt}$${hash}`)).resolves.toBe(false);
  });
});
