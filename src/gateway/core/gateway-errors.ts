/**
 * Why the gateway refuses or fails a call, with the JSON-RPC error code the
 * client gets. Codes in the JSON-RPC implementation-defined range
 * (-32000..-32099) are the gateway's own; the standard ones mean what the
 * JSON-RPC spec says.
 */
export const GATEWAY_ERROR_CODES = {
  invalid_request: -32600,
  method_not_found: -32601,
  invalid_params: -32602,
  internal: -32603,
  /** The server is not registered, disabled, or not reachable by this caller. */
  not_found: -32004,
  /** The caller's trust rules deny this tool. */
  denied: -32003,
  /** A trust rule requires approval, which the gateway does not support yet. */
  approval_required: -32005,
  /** The server's circuit is open: failing fast. */
  circuit_open: -32006,
  /** No answer within the request timeout. */
  timeout: -32001,
  /** The call was cancelled (client gone, session closed). */
  cancelled: -32800,
  /** The backend could not be reached or failed. */
  backend: -32002,
  /** Events were evicted before the client read them (pending bound). */
  evicted: -32007,
  /** The client (or the replica) has as many calls in flight as it may: call again once some have ended. */
  overloaded: -32008,
} as const;

export type GatewayErrorCode = keyof typeof GATEWAY_ERROR_CODES;

/** A refusal or failure of one gateway call, carrying its JSON-RPC error. */
export class GatewayError extends Error {
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    readonly data?: Record<string, unknown>,
    /** A JSON-RPC code from the backend itself (its own error, passed through). */
    readonly rpcCode?: number,
  ) {
    super(message);
    this.name = 'GatewayError';
  }

  toJsonRpc(): { code: number; message: string; data?: Record<string, unknown> } {
    return { code: this.rpcCode ?? GATEWAY_ERROR_CODES[this.code], message: this.message, data: { reason: this.code, ...this.data } };
  }
}

/** An MCP error's message as its sender gave it: the SDK's McpError prefixes it with "MCP error <code>: ". */
export function mcpErrorText(error: { message: string }): string {
  return error.message.replace(/^MCP error -?\d+: /, '');
}

/** A schema's refusal from the SDK (zod: `ZodError`, or `$ZodError` in zod 4), with its issues. */
export function isSchemaFailure(error: unknown): error is Error & { issues: { path: PropertyKey[]; message: string }[] } {
  return error instanceof Error && (error.name === 'ZodError' || error.name === '$ZodError') && Array.isArray((error as { issues?: unknown }).issues);
}
