import { z } from 'zod';
import { jsonObject, listQuery, slug } from '../registry.schemas.js';

export const modelSettings = z.strictObject({
  provider: z.string().trim().min(1).max(100),
  name: z.string().trim().min(1).max(200),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  maxTokens: z.number().int().min(1).max(10_000_000).optional(),
  parameters: jsonObject(8192).optional(),
});

const tag = z.string().regex(/^[a-z0-9][a-z0-9._:-]{0,63}$/, 'must be a lowercase tag of 1-64 characters');
const tags = z
  .array(tag)
  .max(50)
  .refine((t) => new Set(t).size === t.length, 'must not repeat a tag');

export const createAgentSchema = z.strictObject({
  id: slug,
  name: z.string().trim().min(1).max(200),
  description: z.string().max(10_000).default(''),
  model: modelSettings,
  tags: tags.default([]),
  metadata: jsonObject(16_384).default({}),
});

export const updateAgentSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    description: z.string().max(10_000),
    model: modelSettings,
    tags,
    metadata: jsonObject(16_384),
    version: z.number().int().min(1),
  })
  .partial()
  .refine((patch) => Object.keys(patch).some((k) => k !== 'version'), 'must change at least one field');

export const listAgentsQuery = listQuery.extend({ tag: z.string().max(64).optional() });

export type CreateAgent = z.infer<typeof createAgentSchema>;
export type UpdateAgent = z.infer<typeof updateAgentSchema>;
export type ModelSettings = z.infer<typeof modelSettings>;
