import { z } from 'zod';
import { DomainError } from '../common/domain-error.js';
import { isSlug } from '../registry/registry.schemas.js';

const servers = z.string().max(20_000).optional();

export const healthStreamQuery = z.strictObject({
  servers,
  lastEventId: z.string().max(40).optional(),
});

export const healthQuery = z.strictObject({
  servers,
  samples: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((v) => v === 'true')
    .optional(),
});

/** `?servers=a,b`: server ids (slugs), comma-separated; empty or absent means all. */
export function parseServers(value: string | undefined): ReadonlySet<string> | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const ids = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = ids.find((id) => !isSlug(id));
  if (bad !== undefined) throw DomainError.field('servers', `"${bad.slice(0, 80)}" is not a server id (a lowercase slug)`);
  if (ids.length > 1000) throw DomainError.field('servers', 'must list at most 1000 servers');
  return new Set(ids);
}
