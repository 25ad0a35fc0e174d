import { z } from 'zod';
import { DomainError } from '../common/domain-error.js';

/** Lowercase slug ids such as `pmo` or `github-tools`; `__` is reserved for gateway namespacing. */
export const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'must be a lowercase slug of 1-64 letters, digits and "-", such as "pmo"');

/** Small JSON objects (metadata, model parameters), bounded in size. */
export const jsonObject = (maxBytes: number) =>
  z.record(z.string().max(200), z.unknown()).refine((value) => JSON.stringify(value).length <= maxBytes, `must serialize to at most ${maxBytes} bytes`);

export const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});

export function encodeCursor(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

export const isSlug = (value: string): boolean => slug.safeParse(value).success;

/**
 * The key a page cursor carries. A cursor that is not one this API returned —
 * not canonical base64url, or decoding to something `valid` rejects (binary,
 * NUL, a malformed key) — is a 400 on `cursor`, never a database error.
 */
export function decodeCursor(cursor: string | undefined, valid: (decoded: string) => boolean = () => true): string | undefined {
  if (cursor === undefined) return undefined;
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  if (decoded === '' || encodeCursor(decoded) !== cursor || decoded.includes('\0') || decoded.includes('\ufffd') || !valid(decoded)) {
    throw DomainError.field('cursor', 'is not a cursor returned by this API');
  }
  return decoded;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Builds a page from `limit + 1` rows fetched in key order. */
export function pageOf<T>(found: T[], limit: number, key: (item: T) => string): Page<T> {
  const items = found.slice(0, limit);
  return { items, nextCursor: found.length > limit ? encodeCursor(key(items.at(-1)!)) : null };
}
