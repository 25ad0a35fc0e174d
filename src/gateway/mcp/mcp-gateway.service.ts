import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  isInitializeRequest,
  isJSONRPCNotification,
  isJSONRPCRequest,
  type JSONRPCMessage,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/sdk/types.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { CredentialWatcher } from '../../auth/credential-watcher.js';
import type { Principal } from '../../auth/principal.js';
import { ClusterState } from '../../bus/event-bus.js';
import { drainedOrClosed } from '../../common/drained.js';
import { checkOrigin } from '../../common/origin-policy.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { LifecycleService } from '../../ops/lifecycle.service.js';
import { MetricsService } from '../../ops/metrics.service.js';
import { CLOSE_TIMEOUT_MS } from '../../streaming/sse.connection.js';
import { BackendConnector } from '../core/backend-connector.js';
import { BackendPool } from '../core/backend-pool.js';
import { CallLimiter } from '../core/call-limiter.js';
import { type GatewayCaller, GatewayCallers } from '../core/gateway-caller.js';
import { GatewayCalls } from '../core/gateway-metrics.js';
import { GatewayPolicy } from '../core/gateway-policy.js';
import { ListChangedCoalescer } from '../core/list-changed.js';
import { McpAggregator } from './mcp-aggregator.js';
import {
  compareEntries,
  eventIdOf,
  isSessionId,
  type McpSessionRecord,
  McpSessionStore,
  parseEventId,
  STANDALONE_STREAM,
  type StoreSignal,
  WATCH_TTL_MS,
} from './mcp-session-store.js';

const TOOLS_LIST_CHANGED = { jsonrpc: '2.0', method: 'notifications/tools/list_changed' } as const;
/** A resumed request stream that sees no answer this long after the call timeout is ended (its replica died). */
const ORPHAN_GRACE_MS = 15_000;
/** Events read from the store per round when a stream is fed. */
const READ_PAGE = 100;
/** A POST's answer is held this long at most (then what waits goes out), so a quick one leaves in one write. */
const HOLD_MS = 5;
/** …or until this much waits. */
const HOLD_BYTES = 64 * 1024;
/** The record's lastSeenAt and TTL are renewed at most this often per session and replica. */
const TOUCH_EVERY_MS = 5000;

/** One session's SDK transport and aggregated server on this replica (rebuilt on another replica from the record). */
class LocalSession {
  caller!: GatewayCaller;
  lastUsed = Date.now();
  lastTouched = 0;
  readonly inflight = new Map<string | number, AbortController>();
  closed = false;
  /** Its tools/list_changed announcements (a backend may send thousands a second). */
  readonly listChanges: ListChangedCoalescer;

  constructor(
    readonly record: McpSessionRecord,
    readonly transport: WebStandardStreamableHTTPServerTransport,
    readonly aggregator: McpAggregator,
    readonly pool: BackendPool,
    onError: (error: unknown) => void,
  ) {
    this.listChanges = new ListChangedCoalescer(undefined, onError);
  }
}

/** A GET SSE stream fed from the session store: the standalone stream, or a resumed request stream. */
class StoreStream {
  reading = false;
  again = false;
  ended = false;
  readonly openedAt = Date.now();
  /** Orders standalone streams opened in the same millisecond (the newest of a session is the one kept). */
  readonly token = randomUUID();
  lastEventAt = Date.now();
  /** When a request stream's `watch` was last renewed. */
  watchedAt = 0;
  untrack?: () => void;

  constructor(
    readonly sessionId: string,
    readonly streamId: string,
    public cursor: string,
    readonly res: ServerResponse,
    readonly principalId: string,
  ) {}

  /** A request stream ends with its answer; the standalone stream lives until the session or the client ends it. */
  get terminal(): boolean {
    return this.streamId !== STANDALONE_STREAM;
  }
}

/** The headers the SDK's transport reads (it copies every header it is given for each message, and nothing here reads them). */
const SDK_HEADERS = ['accept', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'] as const;

/** The parts of the Fastify request the SDK's web-standard transport reads (the body is passed parsed). */
function webRequest(request: FastifyRequest): Request {
  const headers = new Headers();
  for (const name of SDK_HEADERS) {
    const value = request.headers[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return new Request(requestUrl(request), { method: request.method, headers });
}

/** The request's URL; a Host header that makes no URL (`[bad`, `a b`) is the client's mistake, not a 500. */
function requestUrl(request: FastifyRequest): string {
  const url = `http://${request.host || 'localhost'}${request.url}`;
  return URL.canParse(url) ? url : `http://localhost${request.url}`;
}

/** The ids of the requests the SDK transport is answering on this replica (its own map: it has no accessor). */
function requestStreams(transport: WebStandardStreamableHTTPServerTransport): Map<string | number, string> | undefined {
  return (transport as unknown as { _requestToStreamMapping?: Map<string | number, string> })._requestToStreamMapping;
}

function jsonRpcError(reply: FastifyReply, status: number, code: number, message: string): void {
  void reply
    .status(status)
    .header('content-type', 'application/json')
    .send(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function isResponse(message: unknown): boolean {
  return typeof message === 'object' && message !== null && 'id' in message && ('result' in message || 'error' in message);
}

/**
 * `/mcp`: the Streamable HTTP MCP endpoint. Sessions live in the session
 * store (Redis) so any replica serves any session: a replica without the
 * SDK transport of a known session id rebuilds it (transport marked
 * initialized with that id, aggregated server with the client's recorded
 * capabilities). POSTs go to the SDK transport; GET streams are fed from the
 * store (the standalone stream, and `Last-Event-ID` resumption of any
 * stream), so what another replica stores reaches them; DELETE ends the
 * session on every replica.
 */
@Injectable()
export class McpGatewayService implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger('McpGateway');
  private readonly sessions = new Map<string, LocalSession>();
  private readonly streams = new Set<StoreStream>();
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void)[] = [];
  private readonly opened: Counter<'how'>;
  /** Calls in flight on this replica, per client and in all, across its `/mcp` sessions. */
  private readonly limiter: CallLimiter;
  /** tools/list_changed stored for sessions whose standalone stream is here but whose transport is not. */
  private readonly remoteListChanges = new ListChangedCoalescer(undefined, (error) => this.logger.warn(`list_changed: ${String(error)}`));

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly store: McpSessionStore,
    private readonly connector: BackendConnector,
    private readonly policy: GatewayPolicy,
    private readonly callers: GatewayCallers,
    private readonly calls: GatewayCalls,
    private readonly lifecycle: LifecycleService,
    private readonly cluster: ClusterState,
    private readonly credentials: CredentialWatcher,
    metrics: MetricsService,
  ) {
    const sessions = this.sessions;
    const streams = this.streams;
    const limiter = (this.limiter = new CallLimiter(config.gatewayMcp.maxCallsPerClient, config.gatewayMcp.maxCalls));
    new Gauge({
      name: 'registry_mcp_calls_in_flight',
      help: 'Calls forwarded by /mcp in flight on this replica (GATEWAY_MCP_MAX_CALLS bounds them)',
      registers: [metrics.registry],
      collect() {
        this.set(limiter.inFlight());
      },
    });
    new Gauge({
      name: 'registry_mcp_sessions',
      help: '/mcp sessions with a transport on this replica',
      registers: [metrics.registry],
      collect() {
        this.set(sessions.size);
      },
    });
    new Gauge({
      name: 'registry_mcp_streams',
      help: 'Open /mcp GET streams (standalone and resumed) on this replica',
      registers: [metrics.registry],
      collect() {
        this.set(streams.size);
      },
    });
    this.opened = new Counter({
      name: 'registry_mcp_sessions_opened_total',
      help: '/mcp session transports opened on this replica: created (initialize) or rebuilt (a session of another replica)',
      labelNames: ['how'],
      registers: [metrics.registry],
    });
  }

  private get settings() {
    return this.config.gatewayMcp;
  }

  onModuleInit(): void {
    this.unsubscribe.push(this.store.onSignal((s) => this.onSignal(s)));
    this.unsubscribe.push(this.policy.onAccessChanged(() => this.accessChanged()));
    const keepAlive = setInterval(() => {
      // A stream with bytes still unsent needs no keep-alive (and a stalled reader is not cut for one).
      for (const s of this.streams) if (s.res.writableLength === 0) this.write(s, ': keepalive\n\n');
    }, this.config.stream.keepAliveMs);
    // Safety net for a lost pub/sub wake-up, and the end of orphaned request streams.
    const poll = setInterval(() => {
      const now = Date.now();
      for (const s of this.streams) {
        if (s.terminal && !s.reading && now - s.lastEventAt > this.settings.callTimeoutMs + ORPHAN_GRACE_MS) {
          this.endStream(s, 'no answer: the call is gone');
          continue;
        }
        if (s.terminal && now - s.watchedAt > WATCH_TTL_MS / 3) void this.watch(s);
        this.feed(s);
      }
    }, 1000);
    const sweep = setInterval(() => this.sweep(), 10_000);
    this.timers = [keepAlive, poll, sweep];
    for (const t of this.timers) t.unref();
    this.lifecycle.onDrain(() => this.drain());
  }

  async onModuleDestroy(): Promise<void> {
    for (const u of this.unsubscribe) u();
    for (const t of this.timers) clearInterval(t);
    this.remoteListChanges.close(false);
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const s of [...this.streams]) this.endStream(s, 'shutdown', true);
    await Promise.allSettled([...this.sessions.values()].map((s) => this.closeLocal(s, 'shutdown')));
    await this.store.close();
  }

  // ---- HTTP ---------------------------------------------------------------------

  async handle(request: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<void> {
    // DNS rebinding / cross-site: a browser's Origin must be one we allow (non-browser clients send none).
    if (request.headers.origin !== undefined) {
      const verdict = checkOrigin(request, this.config.security.allowedOrigins);
      if (!verdict.allowed) return jsonRpcError(reply, 403, -32000, `Origin refused: ${verdict.reason}`);
    }
    if (this.lifecycle.isDraining) {
      void reply.header('retry-after', '1');
      return jsonRpcError(reply, 503, -32000, 'this replica is draining; retry');
    }
    const header = request.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : undefined;
    switch (request.method) {
      case 'POST':
        return this.post(request, reply, principal, sessionId);
      case 'GET':
        return this.get(request, reply, principal, sessionId);
      case 'DELETE':
        return this.delete(reply, principal, sessionId);
      default:
        void reply.header('allow', 'GET, POST, DELETE');
        return jsonRpcError(reply, 405, -32000, 'Method not allowed.');
    }
  }

  /** The session as this principal may use it: its record (404 when unknown, expired or someone else's). */
  private async known(principal: Principal, sessionId: string | undefined, reply: FastifyReply): Promise<McpSessionRecord | null> {
    if (sessionId === undefined) {
      jsonRpcError(reply, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return null;
    }
    const local = this.sessions.get(sessionId);
    const record = local && !local.closed ? local.record : isSessionId(sessionId) ? await this.store.get(sessionId) : null;
    if (!record || record.principalId !== principal.id) {
      jsonRpcError(reply, 404, -32001, 'Session not found');
      return null;
    }
    return record;
  }

  private async post(request: FastifyRequest, reply: FastifyReply, principal: Principal, sessionId: string | undefined): Promise<void> {
    const body = request.body;
    if (body === undefined || body === null || typeof body !== 'object')
      return jsonRpcError(reply, 400, -32700, 'Parse error: a JSON-RPC message or batch is required');
    if (Array.isArray(body) && body.length === 0) return jsonRpcError(reply, 400, -32600, 'Invalid Request: an empty batch');
    const messages = (Array.isArray(body) ? body : [body]) as JSONRPCMessage[];
    const caller = await this.callers.resolve(principal);
    let session: LocalSession;
    const created = messages.some((m) => isInitializeRequest(m));
    const cancelled: (string | number)[] = [];
    if (created) {
      if (sessionId !== undefined) return jsonRpcError(reply, 400, -32600, 'Invalid Request: initialize starts a new session; send it without Mcp-Session-Id');
      const init = messages.find((m) => isInitializeRequest(m)) as { params: { protocolVersion: string } };
      const version = SUPPORTED_PROTOCOL_VERSIONS.includes(init.params.protocolVersion) ? init.params.protocolVersion : LATEST_PROTOCOL_VERSION;
      const deferredParam = (request.query as Record<string, unknown> | undefined)?.deferred;
      if (deferredParam !== undefined && deferredParam !== 'true' && deferredParam !== 'false') {
        return jsonRpcError(reply, 400, -32602, 'Invalid params: the deferred query parameter must be true or false');
      }
      const now = Date.now();
      session = this.open(
        {
          id: randomUUID(),
          principalId: principal.id,
          protocolVersion: version,
          deferred: deferredParam === undefined ? this.settings.deferredDefault : deferredParam === 'true',
          activated: [],
          createdAt: now,
          lastSeenAt: now,
        },
        false,
      );
      this.opened.inc({ how: 'created' });
    } else {
      const record = await this.known(principal, sessionId, reply);
      if (!record) return;
      session = this.local(record);
      if (Date.now() - session.lastTouched > TOUCH_EVERY_MS) {
        session.lastTouched = Date.now();
        if (!(await this.store.touch(record.id, record.principalId))) {
          await this.closeLocal(session, 'expired');
          return jsonRpcError(reply, 404, -32001, 'Session not found');
        }
      }
      // The SDK maps a response to its stream by the request's id: a second request with the id of one in
      // progress here would take over its stream, and the first would never be answered.
      const inProgress = requestStreams(session.transport);
      for (const m of messages) {
        if (isJSONRPCRequest(m) && inProgress?.has(m.id))
          return jsonRpcError(reply, 400, -32600, `Invalid Request: id ${JSON.stringify(m.id)} is already used by a request in progress in this session`);
      }
      // A cancellation may concern a call running on another replica: every replica is told.
      for (const m of messages) {
        if (isJSONRPCNotification(m) && m.method === 'notifications/cancelled' && m.params && typeof m.params.requestId !== 'undefined') {
          const requestId = m.params.requestId as string | number;
          cancelled.push(requestId);
          void this.store.signal({ kind: 'cancelled', sessionId: record.id, requestId }).catch(() => undefined);
        }
      }
    }
    session.caller = caller;
    session.lastUsed = Date.now();
    reply.hijack();
    const res = reply.raw;
    // A credential revoked (expired, re-roled) while its POST is answered ends it: the response is cut and the
    // session's calls on this replica are aborted (the backends are sent notifications/cancelled).
    const untrack = this.credentials.track(principal, {
      close: (reason: string) => {
        res.destroy();
        void this.closeLocal(session, reason);
      },
    });
    try {
      const response = await session.transport.handleRequest(webRequest(request), { parsedBody: body });
      // An initialize the SDK refused (not acceptable, a batch of two, …) started no session: nothing is kept of it.
      if (created && session.transport.sessionId === undefined) void this.closeLocal(session, 'initialize refused');
      for (const requestId of cancelled) this.endCancelled(session, requestId);
      await this.pipe(response, res);
    } catch (error) {
      if (created && session.transport.sessionId === undefined) void this.closeLocal(session, 'initialize failed');
      this.logger.warn(`session ${session.record.id}: ${(error as Error).message}`);
      if (!res.headersSent)
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
      else if (!res.writableEnded) res.end();
    } finally {
      untrack();
    }
  }

  /**
   * A request the client cancelled gets no answer from the SDK (it drops the handler's result), so its POST
   * stream would stay open, with its connection, for the rest of the session. Once the SDK has taken the
   * cancellation (it aborted the handler), a request still unanswered on this replica is answered with a
   * "cancelled" error (-32800), which ends its stream here and for a resume elsewhere. The spec asks receivers
   * not to answer a cancelled request, and senders to ignore an answer that comes after their cancellation:
   * this answer is one of those. A request running on another replica is answered there (its call, aborted by
   * the `cancelled` signal, fails).
   */
  private endCancelled(session: LocalSession, requestId: string | number): void {
    setImmediate(() => {
      if (session.closed || !requestStreams(session.transport)?.has(requestId)) return;
      void session.transport.send({ jsonrpc: '2.0', id: requestId, error: { code: -32800, message: 'Request cancelled' } }).catch(() => undefined);
    });
  }

  /** Writes the SDK's web Response (JSON, 202, or an SSE stream) to the hijacked Node response, cut if the client stops reading. */
  private async pipe(response: Response, res: ServerResponse): Promise<void> {
    // The head and the priming event go out once the handler's work queued in this turn is done: a tool call's
    // request to its backend leaves first, and these two writes (two system calls) overlap the backend's work
    // instead of delaying it (~0.1 ms a call on this path).
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (res.destroyed) {
      void response.body?.cancel().catch(() => undefined);
      return;
    }
    // A quick answer leaves in one write (a system call each costs ~0.1 ms of CPU here, on loopback): the head, the
    // priming event, the answer and the last chunk are held until the body ends, HOLD_MS passes or HOLD_BYTES wait.
    // The socket is corked, not the response (Node 24 writes a corked response's last chunk before its data).
    const socket = res.socket;
    let held = socket !== null && !socket.destroyed;
    if (held) socket?.cork();
    const release = () => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      socket?.uncork();
    };
    const timer = setTimeout(release, HOLD_MS);
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    res.writeHead(response.status, headers);
    res.flushHeaders();
    if (!response.body) {
      res.end();
      release();
      return;
    }
    const reader = response.body.getReader();
    const stop = () => void reader.cancel().catch(() => undefined);
    res.once('close', stop);
    try {
      for (;;) {
        const { value, done } = (await reader.read()) as { value?: Uint8Array; done: boolean };
        if (done || res.destroyed) break;
        res.write(value);
        if (res.writableLength > HOLD_BYTES) release();
        if (res.writableLength > this.config.stream.maxBufferBytes) {
          res.destroy();
          stop();
          break;
        }
      }
    } catch {
      // the stream was cancelled (client gone, session closed)
    } finally {
      res.off('close', stop);
      if (!res.writableEnded && !res.destroyed) res.end();
      release();
    }
  }

  /** This replica's transport of a known session, rebuilt from its record when it has none. */
  private local(record: McpSessionRecord): LocalSession {
    const found = this.sessions.get(record.id);
    if (found && !found.closed) return found;
    this.opened.inc({ how: 'rebuilt' });
    return this.open(record, true);
  }

  private open(record: McpSessionRecord, rebuilt: boolean): LocalSession {
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => record.id,
      eventStore: this.store.eventStore(record.id),
      retryInterval: this.config.stream.retryMs,
      keepAliveMs: this.config.stream.keepAliveMs,
      onsessioninitialized: async () => {
        await this.store.put(record);
        // A client holds at most maxSessionsPerClient sessions: the least recently used beyond are ended everywhere
        // (their next request gets 404, on which the spec has a client start a new session).
        const evicted = await this.store.admit(record.id, record.principalId, this.settings.maxSessionsPerClient);
        for (const id of evicted) await this.store.delete(id);
        if (evicted.length > 0) this.logger.log(`principal ${record.principalId}: ${evicted.length} least recently used /mcp session(s) ended (limit)`);
      },
    });
    if (rebuilt) {
      // The SDK keeps "initialized" and the id in memory; this session was initialized on another replica.
      transport.sessionId = record.id;
      (transport as unknown as { _initialized: boolean })._initialized = true;
    }
    // Assigned once below; the closures handed to the pool and the aggregator run only after that.
    // eslint-disable-next-line prefer-const
    let session!: LocalSession;
    const pool = new BackendPool(this.connector, this.settings.listTimeoutMs, (_serverId, n) => {
      if (n.method === 'notifications/tools/list_changed') this.announceToolsChanged(session);
    });
    const aggregator = new McpAggregator(
      {
        id: record.id,
        caller: () => session.caller,
        deferred: record.deferred,
        activated: () => session.record.activated,
        onActivated: async (activated) => {
          session.record.activated = activated;
          // Read-modify-write of the one field this session changes (the record is this session's only).
          const stored = await this.store.get(record.id);
          if (stored) await this.store.put({ ...stored, activated, lastSeenAt: Date.now() });
          await session.aggregator.server.sendToolListChanged();
        },
        onBackendListChanged: () => this.announceToolsChanged(session),
        callSignal: (requestId) => {
          const controller = new AbortController();
          session.inflight.set(requestId, controller);
          return { signal: controller.signal, done: () => session.inflight.get(requestId) === controller && session.inflight.delete(requestId) };
        },
      },
      pool,
      this.policy,
      this.calls,
      { callTimeoutMs: this.settings.callTimeoutMs, listTimeoutMs: this.settings.listTimeoutMs, limiter: this.limiter },
    );
    session = new LocalSession(record, transport, aggregator, pool, (error) => this.logger.warn(`session ${record.id}: list_changed: ${String(error)}`));
    const server = aggregator.server;
    if (rebuilt) {
      const s = server as unknown as { _clientCapabilities?: unknown; _clientVersion?: unknown };
      s._clientCapabilities = record.clientCapabilities ?? {};
      s._clientVersion = record.clientInfo;
    } else {
      server.oninitialized = () => {
        record.clientCapabilities = server.getClientCapabilities();
        const info = server.getClientVersion();
        if (info) record.clientInfo = { name: String(info.name).slice(0, 200), version: String(info.version).slice(0, 100) };
        void this.store
          .put(record)
          .catch((error: Error) => this.logger.warn(`session ${record.id}: storing the client's capabilities failed: ${error.message}`));
      };
    }
    transport.onclose = () => {
      session.listChanges.close(false);
      if (this.sessions.get(record.id) === session) this.sessions.delete(record.id);
    };
    this.sessions.set(record.id, session);
    void server.connect(transport);
    if (this.sessions.size > this.settings.maxLocalSessions) this.evictOne();
    return session;
  }

  private async get(request: FastifyRequest, reply: FastifyReply, principal: Principal, sessionId: string | undefined): Promise<void> {
    const accept = request.headers.accept ?? '';
    if (!accept.includes('text/event-stream')) return jsonRpcError(reply, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    const record = await this.known(principal, sessionId, reply);
    if (!record) return;
    const lastEventId = request.headers['last-event-id'];
    let streamId = STANDALONE_STREAM;
    let cursor: string;
    if (typeof lastEventId === 'string') {
      const at = parseEventId(lastEventId);
      if (!at) return jsonRpcError(reply, 400, -32000, 'Invalid Last-Event-ID: not an event id of this session');
      streamId = at.streamId;
      cursor = at.entry;
      if (streamId === STANDALONE_STREAM) {
        // Its events are stored before they are sent: an id ahead of the newest was never issued, and waiting for
        // it would lose what comes. The stream goes on from its end. (A request stream's newest events may still be
        // on their way to the store, so its ids are taken as they are; an orphaned one ends after the call timeout.)
        const last = await this.store.lastEntry(record.id, STANDALONE_STREAM);
        if (compareEntries(cursor, last) > 0) cursor = last;
      }
    } else {
      cursor = await this.store.lastEntry(record.id, STANDALONE_STREAM);
    }
    const slot = await this.cluster.acquireConnection(principal.id, this.config.limits.connectionsPerUser, this.config.limits.connectionsTotal);
    if (slot !== 'ok') {
      void reply.header('retry-after', '5');
      return jsonRpcError(
        reply,
        429,
        -32000,
        slot === 'user_limit'
          ? `you already have ${this.config.limits.connectionsPerUser} open stream connections`
          : 'the service is at its stream connection limit',
      );
    }
    void this.store.touch(record.id, record.principalId).catch(() => undefined);
    reply.hijack();
    const res = reply.raw;
    const stream = new StoreStream(record.id, streamId, cursor, res, principal.id);
    this.streams.add(stream);
    res.on('close', () => this.endStream(stream, 'client gone'));
    stream.untrack = this.credentials.track(principal, { close: (reason: string) => this.endStream(stream, reason) });
    // A client gone while the session was looked up or its slot taken: its 'close' came before the listener.
    if (request.raw.socket.destroyed) return this.endStream(stream, 'client gone', true);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'mcp-session-id': record.id,
    });
    if (streamId === STANDALONE_STREAM && typeof lastEventId !== 'string' && record.protocolVersion >= '2025-11-25') {
      // A cursor from the start, so a client cut before any event still resumes without a gap (clients of 2025-11-25 and later).
      this.write(stream, `id: ${eventIdOf(STANDALONE_STREAM, cursor)}\nretry: ${this.config.stream.retryMs}\ndata: \n\n`);
    } else {
      // The head goes out now, not with the first event (which may be a keep-alive interval away).
      res.flushHeaders();
    }
    if (streamId === STANDALONE_STREAM) {
      void this.store.signal({ kind: 'standalone', sessionId: record.id, at: stream.openedAt, token: stream.token }).catch(() => undefined);
    } else {
      // A request stream signals its appends only while someone reads it from elsewhere: this read first asks for
      // them, then reads, so each event is read or signalled (the 1 s poll covers a failed ask).
      await this.watch(stream);
    }
    this.feed(stream);
  }

  private async delete(reply: FastifyReply, principal: Principal, sessionId: string | undefined): Promise<void> {
    const record = await this.known(principal, sessionId, reply);
    if (!record) return;
    const local = this.sessions.get(record.id);
    if (local) await this.closeLocal(local, 'deleted by the client', true);
    await this.store.delete(record.id, record.principalId);
    void reply.status(200).send();
  }

  // ---- streams fed from the store ----------------------------------------------------

  /** Whether the socket takes more now (false: wait for it to drain). */
  private write(stream: StoreStream, chunk: string): boolean {
    if (stream.ended) return false;
    return stream.res.write(chunk);
  }

  /**
   * Sends what the store holds after the stream's cursor, at the client's
   * pace: an event is written once the socket took the previous ones, so a
   * client that reads slowly, or stops, holds at most one event here and is
   * never cut; it gets the rest, in order, when it reads again. A request
   * stream ends after its answer.
   */
  private feed(stream: StoreStream): void {
    if (stream.ended) return;
    if (stream.reading) {
      stream.again = true;
      return;
    }
    stream.reading = true;
    void (async () => {
      try {
        do {
          stream.again = false;
          for (;;) {
            const events = await this.store.readAfter(stream.sessionId, stream.streamId, stream.cursor, READ_PAGE);
            for (const e of events) {
              if (stream.ended) return;
              stream.cursor = e.entry;
              stream.lastEventAt = Date.now();
              if (Object.keys(e.message).length === 0) continue; // a priming event
              if (!this.write(stream, `event: message\nid: ${eventIdOf(stream.streamId, e.entry)}\ndata: ${JSON.stringify(e.message)}\n\n`)) {
                await drainedOrClosed(stream.res);
                if (stream.ended || stream.res.destroyed) return;
              }
              if (stream.terminal && isResponse(e.message)) {
                this.endStream(stream, 'answered');
                return;
              }
            }
            if (events.length < READ_PAGE) break;
          }
        } while (stream.again && !stream.ended);
      } catch (error) {
        this.logger.warn(`session ${stream.sessionId}: reading its events failed: ${(error as Error).message}`);
      } finally {
        stream.reading = false;
      }
    })();
  }

  /** Asks for (or renews) the `appended` signals of a resumed request stream; a failed ask is covered by the 1 s poll. */
  private async watch(stream: StoreStream): Promise<void> {
    stream.watchedAt = Date.now();
    await this.store.watch(stream.sessionId, stream.streamId).catch(() => undefined);
  }

  private endStream(stream: StoreStream, reason: string, destroy = false): void {
    if (stream.ended) return;
    stream.ended = true;
    this.streams.delete(stream);
    stream.untrack?.();
    void this.cluster.releaseConnection(stream.principalId).catch(() => undefined);
    this.logger.debug(`session ${stream.sessionId}: stream ${stream.streamId} ended (${reason})`);
    if (destroy) stream.res.destroy();
    else if (!stream.res.writableEnded) {
      stream.res.end();
      // A client that does not read cannot hold the socket.
      setTimeout(() => stream.res.destroy(), CLOSE_TIMEOUT_MS).unref();
    }
  }

  // ---- cluster signals, access changes ---------------------------------------------------

  private onSignal(signal: StoreSignal): void {
    if (signal.kind === 'appended') {
      for (const s of this.streams) if (s.sessionId === signal.sessionId && s.streamId === signal.streamId) this.feed(s);
    } else if (signal.kind === 'ended') {
      for (const s of [...this.streams]) if (s.sessionId === signal.sessionId) this.endStream(s, 'session deleted');
      this.remoteListChanges.forget(signal.sessionId);
      const local = this.sessions.get(signal.sessionId);
      if (local) void this.closeLocal(local, 'session deleted', true);
    } else if (signal.kind === 'standalone') {
      // One standalone stream per session (the spec: a message goes out on one stream, never to several): the newest
      // is kept, so a client reconnecting while its old stream is not yet known dead (a cut link) is not refused.
      for (const s of [...this.streams]) {
        if (s.sessionId !== signal.sessionId || s.terminal) continue;
        if (s.openedAt < signal.at || (s.openedAt === signal.at && s.token < signal.token)) this.endStream(s, 'replaced by a newer standalone stream');
      }
    } else if (signal.kind === 'cancelled') {
      this.sessions.get(signal.sessionId)?.inflight.get(signal.requestId)?.abort('cancelled by the client');
    }
  }

  /** Trust rules, servers or a backend's tools changed: every session this replica holds re-lists and is told. */
  private accessChanged(): void {
    const told = new Set<string>();
    for (const session of this.sessions.values()) {
      session.aggregator.invalidate();
      told.add(session.record.id);
      this.announceToolsChanged(session);
    }
    // Sessions whose stream is here but whose transport is elsewhere (or evicted).
    for (const s of this.streams) {
      if (s.streamId !== STANDALONE_STREAM || told.has(s.sessionId)) continue;
      told.add(s.sessionId);
      this.remoteListChanges.changed(s.sessionId, 'tools', () => {
        void this.store.append(s.sessionId, STANDALONE_STREAM, TOOLS_LIST_CHANGED).catch(() => undefined);
      });
    }
  }

  /**
   * The session's tools changed (a backend's list_changed, an access change): the cached list is dropped at once
   * (a tools/list from now on reads the backends again), and the client is told through the session's coalescer —
   * at once, or at the end of the window a change already opened (LIST_CHANGED_WINDOW_MS): a backend flooding
   * list_changed costs each client at most ~4 announcements and re-lists a second, and the last one comes after
   * the last change.
   */
  private announceToolsChanged(session: LocalSession): void {
    if (session.closed) return;
    session.aggregator.invalidate();
    session.listChanges.changed('', 'tools', () => {
      if (session.closed) return;
      void session.aggregator.server
        .sendToolListChanged()
        .catch((error: Error) => this.logger.debug(`session ${session.record.id}: list_changed: ${error.message}`));
    });
  }

  // ---- lifetime ------------------------------------------------------------------------

  /** Closes the session's transport here; `deleted`: the session itself is gone (not only its transport on this replica). */
  private async closeLocal(session: LocalSession, reason: string, deleted = false): Promise<void> {
    if (session.closed) return;
    // A change not yet announced is announced now when the session lives on (idle, evicted, draining: its events
    // are stored, its stream may be elsewhere); not when it was deleted. Nothing is sent for it after this.
    session.listChanges.close(!deleted);
    session.closed = true;
    if (this.sessions.get(session.record.id) === session) this.sessions.delete(session.record.id);
    for (const c of session.inflight.values()) c.abort(reason);
    await session.transport.close().catch(() => undefined);
    await session.pool.close();
  }

  /** Idle transports are closed (their record stays: the next request rebuilds them). */
  private sweep(): void {
    const idleBefore = Date.now() - this.settings.localIdleMs;
    for (const s of [...this.sessions.values()]) if (s.lastUsed < idleBefore && s.inflight.size === 0) void this.closeLocal(s, 'idle');
  }

  private evictOne(): void {
    let oldest: LocalSession | undefined;
    for (const s of this.sessions.values()) if (s.inflight.size === 0 && (!oldest || s.lastUsed < oldest.lastUsed)) oldest = s;
    if (oldest) void this.closeLocal(oldest, 'evicted');
  }

  /**
   * SIGTERM: GET streams end (clients resume elsewhere with Last-Event-ID);
   * calls still running are interrupted with an error answer the client can
   * act on (stored, so a resumed stream delivers it), then transports close.
   */
  async drain(): Promise<void> {
    for (const s of [...this.streams]) this.endStream(s, 'draining');
    for (const session of this.sessions.values()) for (const c of session.inflight.values()) c.abort('the replica is shutting down');
    const until = Date.now() + CLOSE_TIMEOUT_MS;
    while ([...this.sessions.values()].some((s) => s.inflight.size > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    // Give the interrupted answers a moment to be written, then close everything.
    await new Promise((r) => setTimeout(r, 50));
    await Promise.allSettled([...this.sessions.values()].map((s) => this.closeLocal(s, 'draining')));
  }
}
