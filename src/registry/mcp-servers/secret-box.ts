import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HKDF_INFO = 'agentic-registry/mcp-server-headers/v1';

export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/**
 * Authenticated encryption of small secrets (MCP server headers) with
 * AES-256-GCM. Ciphertexts read `v1.<iv>.<tag>.<ciphertext>`, each part
 * base64url; a fresh random 96-bit IV per message. Optional associated data
 * (e.g. the owning row's id) binds a ciphertext to its context, so it cannot
 * be moved to another row and still decrypt.
 */
export class SecretBox {
  readonly #key: KeyObject;

  /** `key`: exactly 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new SecretBoxError(`the key must be ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = createSecretKey(Buffer.from(key));
  }

  /** Derives the 32-byte key from a secret string (configuration or stored random key) with HKDF-SHA256. */
  static fromSecret(secret: string): SecretBox {
    if (secret.length === 0) throw new SecretBoxError('the secret must not be empty');
    return new SecretBox(Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), HKDF_INFO, KEY_BYTES)));
  }

  /** A new random secret for `fromSecret` (256 bits, base64url). */
  static generateSecret(): string {
    return randomBytes(KEY_BYTES).toString('base64url');
  }

  encrypt(plaintext: string, associatedData?: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    if (associatedData !== undefined) cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  /** Throws SecretBoxError when the text is malformed, was tampered with, or was sealed with another key or context. */
  decrypt(ciphertext: string, associatedData?: string): string {
    const parts = ciphertext.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) throw new SecretBoxError('not a v1 secret box ciphertext');
    const [iv, tag, body] = parts.slice(1).map((p) => decodePart(p));
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretBoxError('not a v1 secret box ciphertext');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(tag);
    if (associatedData !== undefined) decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError('cannot decrypt: wrong key, or the ciphertext was tampered with');
    }
  }
}

function decodePart(part: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new SecretBoxError('not a v1 secret box ciphertext');
  return Buffer.from(part, 'base64url');
}

/** What sealing needs: SecretBox, or a SecretRing during a key rotation. */
export interface Sealer {
  encrypt(plaintext: string, associatedData?: string): string;
  decrypt(ciphertext: string, associatedData?: string): string;
}

/**
 * A key rotation: encrypts with the current key only, decrypts with the
 * current key or any older one (SECRET_KEY_PREVIOUS, or the key generated in
 * the database before SECRET_KEY was configured). `npm run rotate-secrets`
 * re-encrypts everything with the current key, after which the old ones can go.
 */
export class SecretRing implements Sealer {
  constructor(
    readonly current: SecretBox,
    private readonly previous: readonly SecretBox[] = [],
  ) {}

  encrypt(plaintext: string, associatedData?: string): string {
    return this.current.encrypt(plaintext, associatedData);
  }

  decrypt(ciphertext: string, associatedData?: string): string {
    try {
      return this.current.decrypt(ciphertext, associatedData);
    } catch (error) {
      for (const box of this.previous) {
        try {
          return box.decrypt(ciphertext, associatedData);
        } catch {
          // next key
        }
      }
      throw error;
    }
  }

  /** Whether `ciphertext` is already sealed with the current key. */
  isCurrent(ciphertext: string, associatedData?: string): boolean {
    try {
      this.current.decrypt(ciphertext, associatedData);
      return true;
    } catch {
      return false;
    }
  }
}
