import { z } from 'zod';
import { listQuery } from '../registry.schemas.js';

/** Template variable names, such as `customer_name`. */
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be an identifier of 1-64 letters, digits and "_"');

export const createPromptSchema = z.strictObject({
  template: z.string().min(1).max(100_000),
  description: z.string().max(10_000).default(''),
  variables: z
    .array(identifier)
    .max(200)
    .refine((v) => new Set(v).size === v.length, 'must not repeat a variable')
    .default([]),
  /** Activate the new version in the same transaction. */
  activate: z.boolean().default(false),
});

/** The `:version` path parameter: a positive integer that fits a Postgres integer. */
export const promptVersionParam = z
  .string()
  .regex(/^[1-9]\d{0,8}$/, 'must be a positive integer')
  .transform(Number);

export const listPromptsQuery = listQuery;

export type CreatePrompt = z.infer<typeof createPromptSchema>;
