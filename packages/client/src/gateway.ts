import { abortReason, HttpError, JsonRpcError, RequestTimeoutError, SessionClosedError } from './errors.js';
import { apiUrl, requestJson } from './http.js';
import { runResumable, type StreamOptions, type StreamStatus } from './sse.js';

/** The gateway's JSON-RPC code for a request that got no answer within its timeout. */
export const TIMEOUT_CODE = -32001;

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: string | number | null;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface OpenSessionOptions extends StreamOptions {
  /** The MCP servers (registry ids) to reach in this session. */
  servers: string[];
  /** Extra fields of the session request (e.g. `{ deferred: true }`), sent as they are. */
  sessionOptions?: Record<string, unknown>;
  /** A request with no response within this long is rejected with `RequestTimeoutError` (default 60000; the gateway has its own). */
  requestTimeoutMs?: number;
}

/** A server of the session and how its initialization went. */
export interface SessionServer {
  id: string;
  status: string;
  error?: string;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
  method: string;
}

/**
 * A gateway streaming session (`/api/v1/gateway/stream`), opened by
 * `openSession()`. Its stream is kept open and resumed with `Last-Event-ID`
 * after a drop, on any replica, so no response is lost.
 *
 * Events (`CustomEvent`s; `detail` as listed): `response` (a JSON-RPC
 * response), `notification` (a JSON-RPC notification: progress, list
 * changes…), `chunk`, `error` (the gateway's error event), `heartbeat`,
 * `request-timeout` (`{ id, method }`), `status` (`StreamStatus`), `closed`
 * (`{ reason }`).
 */
export class GatewaySession extends EventTarget {
  private readonly pending = new Map<string | number, Pending>();
  private readonly chunks = new Map<string, string[]>();
  private nextId = 1;
  private lastEventId: string | undefined;
  private readonly controller = new AbortController();
  private closedReason: string | undefined;
  /** Resolves when the session's stream has stopped. */
  readonly done: Promise<void>;

  constructor(
    private readonly options: OpenSessionOptions,
    /** The session id. */
    readonly id: string,
    readonly streamUrl: string,
    readonly requestUrl: string,
    /** Each requested server and whether the gateway could initialize it. */
    readonly servers: SessionServer[],
  ) {
    super();
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
    this.done = runResumable(
      { ...options, signal: this.controller.signal, onStatus: (s: StreamStatus) => this.onStatus(s) },
      {
        url: () => apiUrl(options, streamUrl),
        lastEventId: () => this.lastEventId,
        onFrame: (frame) => {
          if (frame.id !== undefined) this.lastEventId = frame.id;
          let data: unknown = frame.data;
          try {
            data = JSON.parse(frame.data);
          } catch {
            // not JSON: passed on as text
          }
          this.onMessage(frame.event, data);
        },
        fatal: (e) => !e.retryable,
      },
    ).then(
      () => this.shut('closed'),
      (error: unknown) => this.shut(error instanceof HttpError && error.status === 404 ? 'the session is gone (expired or closed)' : String(error)),
    );
  }

  /** Whether `close()` was called or the session ended. */
  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /**
   * Sends a JSON-RPC request through the session; resolves with its
   * `result`, correlated by id. Rejects with `JsonRpcError` (the gateway's or
   * the backend's error), `RequestTimeoutError`, `HttpError` (refused by the
   * gateway), `SessionClosedError`, or the signal's reason. A request given up
   * on (aborted, or past the client's timeout) is cancelled at the gateway
   * too (`notifications/cancelled`).
   */
  request<T = any>(method: string, params?: Record<string, unknown>, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    if (this.closedReason !== undefined) return Promise.reject(new SessionClosedError(this.closedReason));
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 60_000;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.settle(id, undefined, abortReason(options.signal));
        this.cancel(id);
      };
      const timer = setTimeout(() => {
        this.dispatchEvent(new CustomEvent('request-timeout', { detail: { id, method } }));
        this.settle(id, undefined, new RequestTimeoutError(id, timeoutMs));
        this.cancel(id);
      }, timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        method,
        timer,
        resolve: (v) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(v as T);
        },
        reject: (e) => {
          options.signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      // Registered before sending: the response may come on the stream before the 202 does.
      requestJson(this.options, 'POST', this.requestUrl, { body: { jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) } }).catch(
        (error: unknown) => this.settle(id, undefined, error as Error),
      );
    });
  }

  /** Tells the gateway to stop a request this client gave up on (`notifications/cancelled`); best effort. */
  private cancel(id: number): void {
    if (this.closedReason !== undefined) return;
    requestJson(this.options, 'POST', this.requestUrl, { body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } } }).catch(
      () => undefined,
    );
  }

  /** Closes the session (`DELETE`); pending requests fail with `SessionClosedError`. */
  async close(): Promise<void> {
    if (this.closedReason !== undefined) return;
    this.shut('closed by the client');
    try {
      await requestJson(this.options, 'DELETE', `/gateway/stream/${encodeURIComponent(this.id)}`, { okStatuses: [404] });
    } catch {
      // The session expires on its own.
    }
  }

  private onStatus(status: StreamStatus): void {
    this.options.onStatus?.(status);
    this.dispatchEvent(new CustomEvent('status', { detail: status }));
  }

  private onMessage(event: string, data: unknown): void {
    const message = asObject(data);
    if (event === 'chunk' && message) {
      // A large result comes in pieces (`{id, index, count, data}`), then a response with `result_chunks`.
      const key = String(message.request_id ?? message.id);
      const parts = this.chunks.get(key) ?? [];
      parts[Number(message.index)] = String(message.data);
      this.chunks.set(key, parts);
    } else if (event === 'response' && message) {
      const response = message as unknown as JsonRpcResponse & { result_chunks?: number; request_id?: string };
      if (typeof response.result_chunks === 'number') {
        const key = String(response.request_id ?? response.id);
        const text = (this.chunks.get(key) ?? []).join('');
        this.chunks.delete(key);
        response.result = JSON.parse(text);
      }
      if (response.id !== undefined && response.id !== null) {
        if (response.error) this.settle(response.id, undefined, rpcError(response));
        else this.settle(response.id, response.result);
      }
    } else if (event === 'error' && message) {
      // A JSON-RPC error response `{id, error}` (a timeout, an eviction, a refusal), for one request or none.
      const id = (message.id ?? asObject(message.request)?.id) as string | number | undefined | null;
      const error = (asObject(message.error) ?? message) as JsonRpcResponse['error'];
      if (id !== undefined && id !== null && this.pending.has(id)) {
        this.settle(id, undefined, error?.code === TIMEOUT_CODE ? new RequestTimeoutError(id) : rpcError({ jsonrpc: '2.0', id, error }));
      }
    }
    this.dispatchEvent(new CustomEvent(event, { detail: data }));
  }

  private settle(id: string | number, value: unknown, error?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (error === undefined) p.resolve(value);
    else p.reject(error);
  }

  private shut(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.controller.abort();
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, new SessionClosedError(reason));
    this.dispatchEvent(new CustomEvent('closed', { detail: { reason } }));
  }
}

/** `value` as an object, or undefined when it is not one. */
export function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
}

function rpcError(response: JsonRpcResponse): JsonRpcError {
  const e = response.error ?? { code: -32603, message: 'unknown error' };
  return new JsonRpcError(typeof e.code === 'number' ? e.code : -32603, e.message ?? 'error', e.data, response.id);
}

/**
 * Opens a gateway streaming session with `servers`: resolves once the
 * gateway has created it (a server that failed to initialize is listed in
 * `session.servers` with its error); the session's stream then stays open
 * until `close()`. Rejects with `HttpError` (429: too many sessions; 403…).
 *
 * @example
 * ```ts
 * const session = await openSession({ baseUrl, apiKey, servers: ['everything'] });
 * session.addEventListener('notification', (e) => console.log((e as CustomEvent).detail));
 * const tools = await session.request('tools/list');
 * await session.close();
 * ```
 */
export async function openSession(options: OpenSessionOptions): Promise<GatewaySession> {
  const { body } = await requestJson<{ session_id: string; stream_url: string; request_url: string; servers: SessionServer[] }>(
    options,
    'POST',
    '/gateway/stream',
    { body: { ...options.sessionOptions, servers: options.servers }, signal: options.signal },
  );
  return new GatewaySession(options, body.session_id, body.stream_url, body.request_url, body.servers ?? []);
}
