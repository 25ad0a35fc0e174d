import { Inject, Injectable } from '@nestjs/common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport as SdkTransport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  type CallToolResult,
  ErrorCode,
  type JSONRPCNotification,
  McpError,
  type Progress,
  type Prompt,
  type Resource,
  ResultSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { EgressClient } from '../../egress/egress.module.js';
import { describeEgressError as describe, egressDenial } from '../../egress/egress.dispatcher.js';
import { CircuitBreakers } from '../../health/circuit-breakers.js';
import type { ProbeTarget } from '../../health/health.types.js';
import { ServerDirectory } from '../../health/server-directory.js';
import { isTransportFailure, LeanStreamableHttpTransport } from './lean-streamable-http.js';
import { GatewayError, isSchemaFailure, mcpErrorText } from './gateway-errors.js';

export const GATEWAY_CLIENT_INFO = { name: 'agentic-registry-gateway', version: '1' } as const;

/** List pages read at most per list call (a backend that pages forever is cut). */
const MAX_LIST_PAGES = 50;
/** Default per-request timeout when the caller gives none. */
const DEFAULT_TIMEOUT_MS = 60_000;
/** How long the ping that checks a session after a transport error may take before the session is judged dead. */
const PROBE_TIMEOUT_MS = 5000;

export interface BackendCallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export interface ToolCallOptions extends BackendCallOptions {
  /** The backend's `notifications/progress` for this call. */
  readonly onProgress?: (p: Progress) => void;
  /**
   * Whether each progress restarts the call's timeout (the default; the call then ends after MCP_CALL_MAX_TOTAL_MS
   * in all). false: `timeoutMs` is the call's whole time, progress or not (streaming sessions, whose request timeout
   * is a deadline the session keeps for every replica).
   */
  readonly progressResetsTimeout?: boolean;
}

export interface BackendOpenOptions {
  /** Notifications the backend sends outside any request's progress (list changes, logging, …). */
  readonly onNotification?: (notification: JSONRPCNotification) => void;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

const lastReload = new WeakMap<ServerDirectory, number>();

/**
 * The server as this replica's directory knows it. The directory follows the
 * change stream, so a server registered a moment ago (through any replica)
 * may not be in it yet: an unknown id makes it re-read the registry once
 * (at most once a second per replica) before the answer is "no such server".
 */
export async function findServer(directory: ServerDirectory, serverId: string): Promise<ProbeTarget | undefined> {
  await directory.ready();
  const known = directory.get(serverId);
  if (known) return known;
  const now = Date.now();
  if (now - (lastReload.get(directory) ?? 0) < 1000) return undefined;
  lastReload.set(directory, now);
  await directory.reloadAll().catch(() => undefined);
  return directory.get(serverId);
}

/** One initialized MCP client session with a backend; every call through it is counted by the server's circuit breaker. */
export interface BackendSession {
  readonly serverId: string;
  readonly client: Client;
  readonly closed: boolean;
  listTools(options?: BackendCallOptions): Promise<Tool[]>;
  listResources(options?: BackendCallOptions): Promise<Resource[]>;
  listPrompts(options?: BackendCallOptions): Promise<Prompt[]>;
  callTool(name: string, args: Record<string, unknown> | undefined, options?: ToolCallOptions): Promise<CallToolResult>;
  request(method: string, params: Record<string, unknown> | undefined, options?: BackendCallOptions): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** The SDK's own codes for a dead connection and a timeout (numbers: McpError.code is a plain number). */
const CONNECTION_CLOSED: number = ErrorCode.ConnectionClosed;
const REQUEST_TIMEOUT: number = ErrorCode.RequestTimeout;

/**
 * The signal the SDK is given for one call: it follows the caller's `source` only until `detach()`, and with
 * `capMs` it aborts itself that long after the call started (`capped()` then says so). The SDK keeps its
 * `abort` listener on a request's signal after the answer, and an abort then sends the backend
 * `notifications/cancelled` for a request it already answered — every tool stream aborts its call's signal
 * when its client goes, which is after the answer for every call that ends: one useless POST to the
 * backend per call.
 *
 * The cap is this signal, not the SDK's own `maxTotalTimeout`: the SDK checks that only when a progress
 * notification arrives (a backend that goes quiet after the cap is not cut there), and then rejects the call
 * without telling the backend — it is told only by the call's own timer, which the SDK leaves running, one
 * per-call timeout later (60 s by default), the backend sending progress all along. An abort makes the SDK
 * send `notifications/cancelled` at once, and the lean transport lets go of the call's stream.
 */
function callSignal(source: AbortSignal | undefined, capMs: number | undefined): { signal?: AbortSignal; capped: () => boolean; detach: () => void } {
  if (capMs === undefined && (!source || source.aborted)) return { ...(source ? { signal: source } : {}), capped: () => false, detach: () => undefined };
  const own = new AbortController();
  const forward = () => own.abort(source!.reason);
  if (source?.aborted) forward();
  else source?.addEventListener('abort', forward, { once: true });
  let capped = false;
  const timer =
    capMs === undefined || own.signal.aborted
      ? undefined
      : setTimeout(() => {
          capped = true;
          own.abort(`the gateway's total time cap of a call that reports progress (MCP_CALL_MAX_TOTAL_MS, ${capMs} ms) was reached`);
        }, capMs);
  return {
    signal: own.signal,
    capped: () => capped,
    detach: () => {
      clearTimeout(timer);
      source?.removeEventListener('abort', forward);
    },
  };
}

/**
 * Whether the backend answered 404 to a POST of an established session: it no
 * longer knows the session id (it restarted, or expired the session), and the
 * MCP spec says the client must then start a new session. The request was not
 * processed. (Streamable HTTP: StreamableHTTPError 404; legacy HTTP+SSE: a
 * plain Error naming the status.)
 */
export function isSessionUnknown(error: unknown): boolean {
  if (error instanceof StreamableHTTPError) return error.code === 404;
  return error instanceof Error && error.message.startsWith('Error POSTing to endpoint (HTTP 404)');
}

/**
 * A call whose own POST the backend answered 404: it no longer knows the
 * session (restarted, or expired it), so it did not process the request, and
 * the session has closed itself. Only this refusal may be retried (once, on a
 * new session: `retryOnStaleSession`); a timeout or a broken connection may
 * have been processed, and is not.
 */
export class StaleBackendSession extends GatewayError {}

/**
 * Runs `call` on the backend session `get` gives; when the backend refused it
 * as a stale session (StaleBackendSession), once more on the session `get`
 * gives next, a new one (the stale one closed itself, and pools skip closed
 * sessions). At most one retry, and on nothing else.
 */
export async function retryOnStaleSession<T>(get: () => Promise<BackendSession>, call: (session: BackendSession) => Promise<T>): Promise<T> {
  try {
    return await call(await get());
  } catch (error) {
    if (!(error instanceof StaleBackendSession)) throw error;
    return call(await get());
  }
}

/** Why a session the backend answered 404 is closed. */
const UNKNOWN_SESSION = (serverId: string) => `${serverId} no longer knows the backend session (it restarted or expired it)`;

/**
 * The SDK's own connection-closed and timeout errors (the messages it gives them), as opposed to an error the
 * backend answered with the same code: -32000 and -32001 are the first codes of JSON-RPC's server range, which many
 * servers use for their own failures ("Server error", "Session not found", …).
 */
function sdkOwn(error: McpError): 'closed' | 'timeout' | undefined {
  const text = mcpErrorText(error);
  if (error.code === CONNECTION_CLOSED && (text === 'Connection closed' || text === 'Request was cancelled')) return 'closed';
  if (error.code === REQUEST_TIMEOUT && (text === 'Request timed out' || text === 'Maximum total timeout exceeded')) return 'timeout';
  return undefined;
}

/**
 * The SDK client's own verdict that a tool's result does not match the output schema the backend listed for it
 * (it checks `structuredContent` once it has the tool's schema): the backend's fault, though the SDK codes it
 * -32600/-32602, which would tell the gateway's client that its own request was wrong.
 */
function outputSchemaMismatch(error: McpError): string | undefined {
  const text = mcpErrorText(error);
  return /^(Tool .* has an output schema but did not return structured content|Structured content does not match the tool's output schema|Failed to validate structured content)/.test(
    text,
  )
    ? text
    : undefined;
}

/** Whether an error means the backend is unwell (counts against its circuit), rather than an answer it gave. */
function isBackendFailure(error: unknown): boolean {
  if (error instanceof McpError) return sdkOwn(error) !== undefined || isTransportFailure(error) || outputSchemaMismatch(error) !== undefined;
  return true;
}

/** How much of a backend's own error message the client gets. */
export const MAX_BACKEND_MESSAGE = 1024;

function bounded(text: string): string {
  return text.length <= MAX_BACKEND_MESSAGE ? text : `${text.slice(0, MAX_BACKEND_MESSAGE)}… (${text.length} characters, cut)`;
}

/** A result that does not match the MCP schema (the SDK's validation error): where, and what was wrong, in a line. */
function invalidResult(error: unknown): string | undefined {
  if (!isSchemaFailure(error)) return undefined;
  const said = error.issues.slice(0, 3).map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : 'result'}: ${i.message}`);
  return said.join('; ').slice(0, 300);
}

/** Maps an SDK failure to the gateway's error (the backend's own JSON-RPC errors are passed through with their code). */
export function toGatewayError(error: unknown, serverId: string, signal?: AbortSignal): GatewayError {
  if (error instanceof GatewayError) return error;
  if (signal?.aborted) return new GatewayError('cancelled', `the call to ${serverId} was cancelled`, { server: serverId });
  if (error instanceof McpError) {
    const own = sdkOwn(error);
    if (own === 'timeout') return new GatewayError('timeout', `${serverId} did not answer in time`, { server: serverId });
    if (own === 'closed') return new GatewayError('backend', `${serverId} closed the connection`, { server: serverId });
    const text = bounded(mcpErrorText(error));
    // The lean transport's verdict on an answer it could not use (not the backend's own error).
    if (isTransportFailure(error)) return new GatewayError('backend', `${serverId}: ${text}`, { server: serverId });
    const mismatch = outputSchemaMismatch(error);
    if (mismatch)
      return new GatewayError('backend', `${serverId} answered with a result that breaks the tool's own output schema (${bounded(mismatch)})`, {
        server: serverId,
      });
    // The backend's own error: its code and message as it gave them (the message bounded).
    return new GatewayError('backend', text, { server: serverId }, error.code);
  }
  const invalid = invalidResult(error);
  if (invalid) return new GatewayError('backend', `${serverId} answered with a result that is not valid MCP (${invalid})`, { server: serverId });
  if (egressDenial(error)) return new GatewayError('denied', `egress policy: ${describe(error)}`, { server: serverId });
  return new GatewayError('backend', `${serverId}: ${describe(error)}`, { server: serverId });
}

/** How long a replica trusts a breaker it saw closed with no failures before asking Redis again. */
export const CLOSED_BREAKER_CACHE_MS = 250;

/**
 * The server's circuit breaker as the gateway uses it around every call,
 * with one shortcut for the hot path: a breaker seen closed with no recorded
 * failure is trusted for CLOSED_BREAKER_CACHE_MS on this replica (no Redis
 * round trip per call, and a success then changes nothing worth recording).
 * A failure here drops the shortcut at once; a circuit opened by another
 * replica is seen here within that time.
 */
export class BreakerGate {
  private readonly healthyUntil = new Map<string, number>();

  constructor(private readonly breakers: CircuitBreakers) {}

  async allow(serverId: string): Promise<boolean> {
    if ((this.healthyUntil.get(serverId) ?? 0) > performance.now()) return true;
    const outcome = await this.breakers.apply(serverId, 'allow');
    if (outcome.allowed && outcome.state.state === 'closed' && outcome.state.failures === 0) {
      if (this.healthyUntil.size >= 10_000) this.healthyUntil.clear();
      this.healthyUntil.set(serverId, performance.now() + CLOSED_BREAKER_CACHE_MS);
    } else this.healthyUntil.delete(serverId);
    return outcome.allowed;
  }

  success(serverId: string): void {
    if ((this.healthyUntil.get(serverId) ?? 0) > performance.now()) return;
    void this.breakers.recordSuccess(serverId).catch(() => undefined);
  }

  failure(serverId: string, reason: string): void {
    this.healthyUntil.delete(serverId);
    void this.breakers.recordFailure(serverId, reason).catch(() => undefined);
  }
}

/**
 * One backend MCP session. A session that is dead closes itself, so every
 * pool holding it (they skip closed sessions) opens a new one on the next
 * call:
 * - a 404 to one of its POSTs: the backend no longer knows the session id,
 *   and processes nothing sent on it. No new call may use the session; the
 *   calls in flight on it get their own 404 (StaleBackendSession: callers
 *   make them again on a new session), and the SDK client is closed once they
 *   have (PROBE_TIMEOUT_MS at most);
 * - any other transport error (the SDK reports a broken response stream only
 *   through `onerror`, leaving its request pending): the session is probed
 *   with a ping (PROBE_TIMEOUT_MS), and closed if the ping fails: the SDK
 *   rejects the calls in flight on it at once instead of leaving them to
 *   their timeout. A transient error on a healthy backend leaves a working
 *   session alone.
 */
class SdkBackendSession implements BackendSession {
  closed = false;
  /** Why the session was judged dead, and whether that counts against the backend's circuit (a 404 does not: the backend answered). */
  private lost?: { reason: string; failure: boolean };
  private probing = false;
  /** Calls running on the session. */
  private inflight = 0;
  /** The SDK client was closed (by us or by its transport). */
  private shut = false;

  constructor(
    readonly serverId: string,
    readonly client: Client,
    private readonly transport: SdkTransport,
    private readonly breakers: BreakerGate,
    private readonly defaultTimeoutMs: number,
    /** MCP_CALL_MAX_TOTAL_MS: the longest a call that reports progress may run in all (each progress resets its own timeout). */
    private readonly maxTotalMs: number,
  ) {}

  /** The client's transport reported an error (a failed POST, a broken or unresumable stream, …). */
  transportError(error: unknown): void {
    if (this.closed) return;
    if (isSessionUnknown(error)) {
      this.retire();
      return;
    }
    if (this.probing) return;
    this.probing = true;
    this.client.ping({ timeout: Math.min(PROBE_TIMEOUT_MS, this.defaultTimeoutMs) }).then(
      () => {
        this.probing = false;
      },
      (probe: unknown) => {
        this.probing = false;
        if (isSessionUnknown(probe)) this.lose(UNKNOWN_SESSION(this.serverId), false);
        else this.lose(`the connection to ${this.serverId} failed (${describe(error)}) and a ping found the session dead (${describe(probe)})`, true);
      },
    );
  }

  /** The SDK client closed (by us, or by its transport): no call may use it any more. */
  clientClosed(): void {
    this.closed = true;
    this.shut = true;
  }

  /** Closes a dead session now: the SDK rejects every request pending on it (ConnectionClosed); no DELETE is sent. */
  private lose(reason: string, failure: boolean): void {
    if (this.shut) return;
    this.lost ??= { reason, failure };
    this.closed = true;
    this.shutClient();
  }

  /**
   * The backend answered 404 on this session: no new call may use it. The SDK reports that 404 (through onerror)
   * before it rejects the request whose POST got it, so closing the client now would reject that request, and the
   * others in flight, as "connection closed", and their callers could not tell they were not processed: the client
   * is closed once they have their own answers (a 404 each), PROBE_TIMEOUT_MS at most. No DELETE is sent.
   */
  private retire(): void {
    if (this.closed) return;
    this.lost = { reason: UNKNOWN_SESSION(this.serverId), failure: false };
    this.closed = true;
    if (this.inflight === 0) this.shutClient();
    else setTimeout(() => this.shutClient(), PROBE_TIMEOUT_MS).unref();
  }

  private shutClient(): void {
    if (this.shut) return;
    this.shut = true;
    void this.client.close().catch(() => undefined);
  }

  /** One call under the server's breaker: fail fast when open; the outcome recorded. With `capMs`, cancelled after that long in all. */
  private async guarded<T>(
    options: BackendCallOptions | undefined,
    call: (o: { signal?: AbortSignal; timeout: number }) => Promise<T>,
    capMs?: number,
  ): Promise<T> {
    if (this.closed) throw this.refused();
    if (!(await this.breakers.allow(this.serverId))) {
      throw new GatewayError('circuit_open', `the circuit of ${this.serverId} is open: failing fast`, { server: this.serverId });
    }
    // Another call's 404 may have retired the session while this one waited on the breaker: nothing was sent yet.
    if (this.closed) throw this.refused();
    const timeout = options?.timeoutMs ?? this.defaultTimeoutMs;
    const scoped = callSignal(options?.signal, capMs);
    this.inflight++;
    try {
      const result = await call({ ...(scoped.signal ? { signal: scoped.signal } : {}), timeout });
      this.breakers.success(this.serverId);
      return result;
    } catch (error) {
      if (options?.signal?.aborted) throw toGatewayError(error, this.serverId, options.signal);
      if (scoped.capped()) {
        // Like a timeout: counted against the circuit, and a timeout (-32001) for the client, saying which limit it was.
        this.breakers.failure(this.serverId, `gateway call failed: still running after MCP_CALL_MAX_TOTAL_MS (${capMs} ms)`);
        throw new GatewayError(
          'timeout',
          `${this.serverId} was still running after ${capMs} ms, the total time cap of a call that reports progress (MCP_CALL_MAX_TOTAL_MS): it was cancelled`,
          { server: this.serverId },
        );
      }
      if (isSessionUnknown(error)) {
        // This call's own POST got the 404: the backend answered (it is up), only this session is gone, and the request
        // was not processed. The next call (or the retry) opens a new session.
        this.retire();
        this.breakers.success(this.serverId);
        throw this.stale();
      }
      const lost = this.lost;
      if (lost && error instanceof McpError && sdkOwn(error) === 'closed') {
        // Rejected because the session was found dead: counted once per call only if the backend itself failed.
        if (lost.failure) this.breakers.failure(this.serverId, `gateway call failed: ${lost.reason}`);
        throw new GatewayError('backend', `the session with ${this.serverId} was lost: ${lost.reason}; call again`, { server: this.serverId });
      }
      if (isBackendFailure(error)) this.breakers.failure(this.serverId, `gateway call failed: ${describe(error)}`);
      else this.breakers.success(this.serverId);
      throw toGatewayError(error, this.serverId);
    } finally {
      scoped.detach();
      // A session retired by a 404 closes its client with its last call.
      if (--this.inflight === 0 && this.lost) this.shutClient();
    }
  }

  /**
   * Why a call is refused before anything is sent. A caller may have taken the session (from a pool) just before
   * another call's 404 retired it: that refusal is a StaleBackendSession like the 404 itself (made again on a new
   * session by `retryOnStaleSession`), since the call never left. A session closed for any other reason (the
   * backend found dead, or closed by its owner) is not retried.
   */
  private refused(): GatewayError {
    if (this.lost?.failure === false) return this.stale();
    return new GatewayError('backend', `the session with ${this.serverId} is closed`, { server: this.serverId });
  }

  private stale(): StaleBackendSession {
    return new StaleBackendSession('backend', `${this.serverId} no longer knows the backend session (it restarted?); call again: a new one is opened`, {
      server: this.serverId,
    });
  }

  private async pages<T>(
    options: BackendCallOptions | undefined,
    page: (cursor: string | undefined, o: { signal?: AbortSignal; timeout: number }) => Promise<{ items: T[]; next?: string }>,
  ): Promise<T[]> {
    return this.guarded(options, async (o) => {
      const all: T[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < MAX_LIST_PAGES; i++) {
        const { items, next } = await page(cursor, o);
        all.push(...items);
        if (!next) break;
        cursor = next;
      }
      return all;
    });
  }

  listTools(options?: BackendCallOptions): Promise<Tool[]> {
    return this.pages(options, async (cursor, o) => {
      const r = await this.client.listTools(cursor ? { cursor } : undefined, o);
      return { items: r.tools, next: r.nextCursor };
    });
  }

  listResources(options?: BackendCallOptions): Promise<Resource[]> {
    return this.pages(options, async (cursor, o) => {
      const r = await this.client.listResources(cursor ? { cursor } : undefined, o);
      return { items: r.resources, next: r.nextCursor };
    });
  }

  listPrompts(options?: BackendCallOptions): Promise<Prompt[]> {
    return this.pages(options, async (cursor, o) => {
      const r = await this.client.listPrompts(cursor ? { cursor } : undefined, o);
      return { items: r.prompts, next: r.nextCursor };
    });
  }

  callTool(name: string, args: Record<string, unknown> | undefined, options?: ToolCallOptions): Promise<CallToolResult> {
    // Progress resets the call's own timeout (unless told not to), so a backend that reports progress forever would
    // hold it forever: such a call is cancelled after MCP_CALL_MAX_TOTAL_MS in all (see callSignal).
    const onProgress = options?.onProgress;
    const resets = onProgress !== undefined && options?.progressResetsTimeout !== false;
    return this.guarded(
      options,
      (o) =>
        this.client.callTool({ name, ...(args ? { arguments: args } : {}) }, undefined, {
          ...o,
          ...(onProgress ? { onprogress: onProgress, resetTimeoutOnProgress: resets } : {}),
        }) as Promise<CallToolResult>,
      resets ? this.maxTotalMs : undefined,
    );
  }

  request(method: string, params: Record<string, unknown> | undefined, options?: BackendCallOptions): Promise<Record<string, unknown>> {
    return this.guarded(options, (o) => this.client.request({ method, ...(params ? { params } : {}) }, ResultSchema, o) as Promise<Record<string, unknown>>);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    if (this.transport instanceof StreamableHTTPClientTransport && this.transport.sessionId !== undefined) await bounded(this.transport.terminateSession());
    await bounded(this.client.close());
  }
}

/**
 * Opens MCP client sessions with registered backends, with
 * `@modelcontextprotocol/sdk`: Streamable HTTP (falling back to legacy
 * HTTP+SSE when the server answers 404/405 to it), the server's stored
 * headers, every request through the egress client (the policy checks each
 * resolved address at connect time), failing fast while the server's circuit
 * is open and counting each call's outcome against it.
 */
@Injectable()
export class BackendConnector {
  private readonly gate: BreakerGate;
  /** MCP_CALL_MAX_TOTAL_MS. */
  private readonly maxTotalMs: number;

  constructor(
    private readonly directory: ServerDirectory,
    breakers: CircuitBreakers,
    private readonly egress: EgressClient,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.gate = new BreakerGate(breakers);
    this.maxTotalMs = config.security.mcpCallMaxTotalMs;
  }

  async open(serverId: string, opts: BackendOpenOptions = {}): Promise<BackendSession> {
    const target = await findServer(this.directory, serverId);
    if (!target || !target.enabled) throw new GatewayError('not_found', `no enabled MCP server ${serverId}`, { server: serverId });
    if (!(await this.gate.allow(serverId))) {
      throw new GatewayError('circuit_open', `the circuit of ${serverId} is open: failing fast`, { server: serverId });
    }
    const timeout = opts.timeoutMs ?? target.healthCheck.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    try {
      const endpoint = await this.directory.endpoint(serverId);
      const session = await this.connect(serverId, target.transport, endpoint, opts, timeout);
      this.gate.success(serverId);
      return session;
    } catch (error) {
      const gatewayError = toGatewayError(error, serverId, opts.signal);
      if (!opts.signal?.aborted && isBackendFailure(error)) this.gate.failure(serverId, `gateway connect failed: ${describe(error)}`);
      throw gatewayError;
    }
  }

  private async connect(
    serverId: string,
    kind: 'streamable-http' | 'sse',
    endpoint: { url: string; headers: Record<string, string> },
    opts: BackendOpenOptions,
    timeout: number,
  ): Promise<BackendSession> {
    const attempt = async (transport: SdkTransport): Promise<BackendSession> => {
      const client = new Client(GATEWAY_CLIENT_INFO, { capabilities: {} });
      // Before the session exists, errors surface as the failed initialize; after, they may mean the session died (see SdkBackendSession).
      const made: { session?: SdkBackendSession } = {};
      client.onerror = (error) => made.session?.transportError(error);
      client.onclose = () => made.session?.clientClosed();
      if (opts.onNotification) {
        const forward = opts.onNotification;
        client.fallbackNotificationHandler = (n) => {
          forward({ jsonrpc: '2.0', ...n });
          return Promise.resolve();
        };
      }
      try {
        await client.connect(transport, { timeout, ...(opts.signal ? { signal: opts.signal } : {}) });
      } catch (error) {
        await client.close().catch(() => undefined);
        throw error;
      }
      made.session = new SdkBackendSession(serverId, client, transport, this.gate, timeout, this.maxTotalMs);
      return made.session;
    };
    const url = new URL(endpoint.url);
    const requestInit = { headers: endpoint.headers };
    const fetch = this.egress.fetch as never;
    const sse = () => new SSEClientTransport(url, { fetch, requestInit, eventSourceInit: { fetch } });
    if (kind === 'sse') return attempt(sse());
    try {
      return await attempt(
        new LeanStreamableHttpTransport(url, this.egress.dispatcher, endpoint.headers, this.egress.maxMessageBytes, {
          fetch,
          requestInit,
          reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
        }),
      );
    } catch (error) {
      // The spec's backwards-compatibility rule: a 4xx to the initialize POST means an older HTTP+SSE server.
      if (error instanceof StreamableHTTPError && (error.code === 404 || error.code === 405)) return attempt(sse());
      throw error;
    }
  }
}
