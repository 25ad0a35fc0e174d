import { z } from 'zod';
import { listQuery, slug } from '../registry.schemas.js';

export const EFFECTS = ['allow', 'deny', 'require_approval'] as const;
export type Effect = (typeof EFFECTS)[number];

/** A glob over tool names: `*` matches any run of characters, everything else itself (`github.*`, `*`). */
export const toolPattern = z.string().regex(/^[A-Za-z0-9_\-./*]{1,200}$/, 'must be 1-200 letters, digits, "_", "-", ".", "/" or "*"');

const priority = z.number().int().min(-1_000_000).max(1_000_000);

export const createTrustRuleSchema = z.strictObject({
  agentId: slug,
  mcpServerId: slug,
  toolPattern,
  effect: z.enum(EFFECTS),
  priority: priority.default(0),
  description: z.string().max(10_000).default(''),
});

export const updateTrustRuleSchema = z
  .strictObject({
    agentId: slug,
    mcpServerId: slug,
    toolPattern,
    effect: z.enum(EFFECTS),
    priority,
    description: z.string().max(10_000),
    version: z.number().int().min(1),
  })
  .partial()
  .refine((patch) => Object.keys(patch).some((k) => k !== 'version'), 'must change at least one field');

export const listTrustRulesQuery = listQuery.extend({
  agentId: slug.optional(),
  mcpServerId: slug.optional(),
});

export const trustRuleId = z.uuid('must be a UUID');

export type CreateTrustRule = z.infer<typeof createTrustRuleSchema>;
export type UpdateTrustRule = z.infer<typeof updateTrustRuleSchema>;
