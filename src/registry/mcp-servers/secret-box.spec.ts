import { randomBytes } from 'node:crypto';
import { SecretBox, SecretBoxError } from './secret-box.js';

describe('SecretBox', () => {
  const box = SecretBox.fromSecret('a configuration secret of at least 32 characters');

  it('round-trips text, with a fresh IV every time', () => {
    const plaintext = JSON.stringify({ Authorization: 'Bearer s3cr3t', 'X-Ünïcode': '✓' });
    const a = box.encrypt(plaintext);
    const b = box.encrypt(plaintext);
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('s3cr3t');
    expect(box.decrypt(a)).toBe(plaintext);
    expect(box.decrypt(b)).toBe(plaintext);
    expect(box.decrypt(box.encrypt(''))).toBe('');
  });

  it('detects tampering with the ciphertext, tag or IV', () => {
    const sealed = box.encrypt('top secret value');
    const [v, iv, tag, body] = sealed.split('.');
    const flip = (part: string) => {
      const bytes = Buffer.from(part, 'base64url');
      bytes[0] ^= 1;
      return bytes.toString('base64url');
    };
    expect(() => box.decrypt([v, iv, tag, flip(body)].join('.'))).toThrow(SecretBoxError);
    expect(() => box.decrypt([v, iv, flip(tag), body].join('.'))).toThrow(SecretBoxError);
    expect(() => box.decrypt([v, flip(iv), tag, body].join('.'))).toThrow(SecretBoxError);
    expect(() => box.decrypt(sealed.slice(0, -2))).toThrow(SecretBoxError);
    expect(() => box.decrypt('v2' + sealed.slice(2))).toThrow(SecretBoxError);
    expect(() => box.decrypt('garbage')).toThrow(SecretBoxError);
    expect(() => box.decrypt(`${v}.${iv}.${tag}.!!`)).toThrow(SecretBoxError);
  });

  it('fails with the wrong key', () => {
    const sealed = box.encrypt('top secret value');
    expect(() => SecretBox.fromSecret('another configuration secret, also 32+ chars').decrypt(sealed)).toThrow(SecretBoxError);
    expect(() => new SecretBox(randomBytes(32)).decrypt(sealed)).toThrow(/wrong key/);
  });

  it('binds a ciphertext to its associated data', () => {
    const sealed = box.encrypt('token', 'mcp_server:github');
    expect(box.decrypt(sealed, 'mcp_server:github')).toBe('token');
    expect(() => box.decrypt(sealed, 'mcp_server:other')).toThrow(SecretBoxError);
    expect(() => box.decrypt(sealed)).toThrow(SecretBoxError);
  });

  it('derives the same key from the same secret and rejects bad keys', () => {
    const sealed = box.encrypt('x');
    expect(SecretBox.fromSecret('a configuration secret of at least 32 characters').decrypt(sealed)).toBe('x');
    const generated = SecretBox.generateSecret();
    expect(generated).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(SecretBox.generateSecret()).not.toBe(generated);
    expect(SecretBox.fromSecret(generated).decrypt(SecretBox.fromSecret(generated).encrypt('y'))).toBe('y');
    expect(() => new SecretBox(randomBytes(16))).toThrow(SecretBoxError);
    expect(() => SecretBox.fromSecret('')).toThrow(SecretBoxError);
  });

  it('does not expose the key when inspected or serialized', () => {
    const secret = 'a configuration secret of at least 32 characters';
    expect(JSON.stringify(box)).not.toContain(secret);
    expect(Object.keys(box)).toEqual([]);
  });
});
