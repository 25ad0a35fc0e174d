/** Every error this library raises (other than an abort, which is the signal's own reason). */
export class RegistryError extends Error {
  override name = 'RegistryError';
}

/** An HTTP answer other than the expected one; `problem` is the service's `application/problem+json` body when it sent one. */
export class HttpError extends RegistryError {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly problem: { code?: string; detail?: string; [key: string]: unknown } | undefined,
    readonly retryAfterMs?: number,
  ) {
    super(`HTTP ${status}${problem?.detail ? `: ${problem.detail}` : problem?.code ? `: ${problem.code}` : ''}`);
  }

  /** Whether trying again later can help (429, 408, 5xx); other 4xx answers (bad credentials, bad input) will not change. */
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** A stream that sent no byte, not even a keep-alive, for twice its heartbeat interval: treated as dead and reconnected. */
export class StreamIdleError extends RegistryError {
  override name = 'StreamIdleError';
  constructor(readonly idleMs: number) {
    super(`no byte received for ${idleMs} ms`);
  }
}

/**
 * The change stream answered `reset`: the position asked for is older than the
 * service's retention (or ahead of its stream). Raised by `follow()` only when
 * no `onReset` hook was given, so that a gap is never silent.
 */
export class StreamResetError extends RegistryError {
  override name = 'StreamResetError';
  constructor(
    readonly cursor: number,
    readonly reason: string,
  ) {
    super(`the stream was reset to ${cursor}: ${reason}`);
  }
}

/** A JSON-RPC error answered by the gateway or a backend MCP server (`code`, `message`, `data` as sent). */
export class JsonRpcError extends RegistryError {
  override name = 'JsonRpcError';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
    readonly id?: string | number | null,
  ) {
    super(message);
  }
}

/** A gateway request with no answer within its timeout (the client's own, or the gateway's `error` event). */
export class RequestTimeoutError extends RegistryError {
  override name = 'RequestTimeoutError';
  constructor(
    readonly id: string | number,
    readonly timeoutMs?: number,
  ) {
    super(timeoutMs === undefined ? `request ${id} timed out at the gateway` : `request ${id} got no answer within ${timeoutMs} ms`);
  }
}

/** The gateway session is closed (by `close()`, by the service, or it expired); pending and new requests fail with this. */
export class SessionClosedError extends RegistryError {
  override name = 'SessionClosedError';
  constructor(readonly reason: string) {
    super(`the gateway session is closed: ${reason}`);
  }
}

/**
 * The reason an aborted signal carries (typed as an `Error`: the platform's
 * reasons are `DOMException`s, and a caller's own reason is passed through
 * as it is), or a standard `AbortError`.
 */
export function abortReason(signal: AbortSignal | undefined): Error {
  return (signal?.reason as Error | undefined) ?? new DOMException('This operation was aborted', 'AbortError');
}
