import { GatewayError } from './gateway-errors.js';

/**
 * A `tools/call`'s `arguments` as every way in takes them: absent, or a JSON
 * object (MCP's schema); anything else (a number, an array, a string, null) is
 * refused with -32602 naming the field, before any backend is asked.
 */
export function toolArguments(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  throw new GatewayError('invalid_params', 'Invalid params: params.arguments must be an object', { field: 'params.arguments' });
}
