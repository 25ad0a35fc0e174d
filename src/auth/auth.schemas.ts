import { z } from 'zod';
import { ROLES } from '../events/event-catalog.js';

const role = z.enum(ROLES as unknown as ['viewer', 'editor', 'admin']);

export const loginSchema = z.strictObject({
  username: z.string().min(1).max(100),
  password: z.string().min(1).max(1000),
});

export const createApiKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  role,
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

export const uuidParam = z.uuid();
