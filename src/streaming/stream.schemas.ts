import { z } from 'zod';
import { DomainError } from '../common/domain-error.js';

export const changesQuery = z.strictObject({
  events: z.string().max(2000).optional(),
  lastEventId: z.string().max(40).optional(),
});

export const eventsQuery = z.strictObject({
  after: z.string().max(40).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  events: z.string().max(2000).optional(),
});

/** A stream position: a non-negative integer (the SSE `id:`). Empty means "none". */
export function parseCursor(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw DomainError.field(field, 'must be a non-negative integer event id');
  }
  return Number(v);
}
