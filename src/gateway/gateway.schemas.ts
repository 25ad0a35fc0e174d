import { z } from 'zod';
import { slug } from '../registry/registry.schemas.js';

/** A JSON-RPC 2.0 request (with `id`) or notification (without). */
export const jsonRpcRequest = z.strictObject({
  jsonrpc: z.literal('2.0', { error: 'must be "2.0"' }),
  id: z.union([z.string().min(1).max(200), z.number().int().safe()]).optional(),
  method: z.string().min(1).max(200),
  params: z.record(z.string(), z.unknown()).optional(),
});

export const createSessionSchema = z.strictObject({
  /** The MCP servers to open the session on; omitted: every server the caller may reach. */
  servers: z.array(slug).min(1).max(100).optional(),
  /** Deferred tool loading: tools/list shows search_tools and activate_tools until tools are activated. */
  deferred: z.boolean().default(false),
});

/** `POST /api/v1/mcp/stream`: a JSON-RPC `tools/call` with a namespaced tool name. */
export const toolCallRequest = z.strictObject({
  jsonrpc: z.literal('2.0', { error: 'must be "2.0"' }),
  id: z.union([z.string().min(1).max(200), z.number().int().safe()]),
  method: z.literal('tools/call', { error: 'must be "tools/call"' }),
  params: z.strictObject({
    name: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?__.{1,200}$/s, 'must be a namespaced tool name: <server>__<tool>'),
    /** Checked by the call (toolArguments): not an object is a JSON-RPC -32602 on the stream, as on the other ways in. */
    arguments: z.unknown().optional(),
    _meta: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const toolPathParams = z.object({ server: slug, tool: z.string().min(1).max(200) });

/** `?arguments=<URL-encoded JSON object>` of the EventSource form. */
export const toolStreamQuery = z.strictObject({
  arguments: z
    .string()
    .max(64 * 1024)
    .transform((text, ctx) => {
      try {
        const value: unknown = JSON.parse(text);
        if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object (URL-encoded)' });
      return z.NEVER;
    })
    .optional(),
  id: z.string().min(1).max(200).optional(),
});

export const sessionIdParam = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'must be a session id');
