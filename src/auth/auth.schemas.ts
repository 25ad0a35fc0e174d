import { z } from 'zod';
import { slug } from '../registry/registry.schemas.js';
import { ROLES } from './roles.js';

const role = z.enum(ROLES as unknown as ['viewer', 'editor', 'admin']);

export const loginSchema = z.strictObject({
  username: z.string().min(1).max(100),
  password: z.string().min(1).max(1000),
});

const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

export const createApiKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  role,
  /** When the key stops working (ISO 8601 with a time zone); omitted: never. */
  expiresAt: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone, e.g. 2027-01-31T00:00:00Z' })
    .transform((v) => new Date(v))
    .refine((d) => d.getTime() > Date.now(), 'must be in the future')
    .refine((d) => d.getTime() < Date.now() + TEN_YEARS_MS, 'must be within ten years')
    .optional(),
  /** Binds the key to an agent: MCP gateway calls made with it are limited by that agent's trust rules. */
  agentId: slug.optional(),
});

export const createUserSchema = z.strictObject({
  username: z
    .string()
    .min(2)
    .max(64)
    .regex(/^[a-zA-Z0-9._-]+$/, 'may contain letters, digits, ".", "_" and "-"'),
  password: z.string().min(10, 'must be at least 10 characters').max(1000),
  role,
});

export const updateUserSchema = z
  .strictObject({
    role,
    password: z.string().min(10, 'must be at least 10 characters').max(1000),
  })
  .partial()
  .refine((patch) => patch.role !== undefined || patch.password !== undefined, 'must change role or password');

export const uuidParam = z.uuid();
