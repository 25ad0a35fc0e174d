import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit, Optional } from '@nestjs/common';
import type { JSONRPCNotification } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { Gauge } from 'prom-client';
import { CredentialWatcher } from '../../auth/credential-watcher.js';
import type { Principal } from '../../auth/principal.js';
import { EventBus } from '../../bus/event-bus.js';
import { RedisConnections } from '../../bus/redis.connections.js';
import { DomainError } from '../../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { MetricsService } from '../../ops/metrics.service.js';
import { EventFilter } from '../../streaming/event-filter.js';
import type { HubEvent } from '../../streaming/event-window.js';
import { chunk, type SseConnection } from '../../streaming/sse.connection.js';
import { SseStreamService } from '../../streaming/sse-stream.service.js';
import { BackendConnector, type BackendSession, retryOnStaleSession } from '../core/backend-connector.js';
import { type GatewayCaller, GatewayCallers } from '../core/gateway-caller.js';
import { GatewayError } from '../core/gateway-errors.js';
import { GatewayCalls, outcomeOf } from '../core/gateway-metrics.js';
import { GatewayPolicy } from '../core/gateway-policy.js';
import { LIST_CHANGED_METHODS, ListChangedCoalescer } from '../core/list-changed.js';
import { toolArguments } from '../core/tool-arguments.js';
import { DeferredToolCatalog, META_TOOL_NAMES } from '../core/tool-catalog.js';
import { broadcastList, route } from './gateway-router.js';
import { SessionBackends } from './session-backends.js';
import { MemorySessionStore } from './memory-session-store.js';
import { RedisSessionStore, type SessionRecord, type SessionStore, type StoredEvent } from './session-store.js';
import { type LiveListener, type SessionFeed, SessionStreamReader } from './stream-reader.js';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  readonly jsonrpc: '2.0';
  readonly id?: JsonRpcId;
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

export interface ServerStatus {
  readonly id: string;
  readonly status: 'ready' | 'failed' | 'denied';
  readonly error?: { code: number; message: string };
}

/** Requests awaiting their answer per session; one more is 429. */
export const MAX_PENDING_REQUESTS = 100;
/** A response whose JSON is larger than this goes as `chunk` events, then a `response` without `result`. */
export const CHUNK_BYTES = 256 * 1024;
/**
 * Most stored events read at a time by a stream catching up. A page is also bounded in bytes by
 * the connection's replay slice (SseConnection.replayBytes, 256 KiB): events may be 256 KiB chunks,
 * and a stream whose client does not read holds its page until the socket drains, so what one
 * such stream holds is about one slice whatever the events' sizes.
 */
const REPLAY_PAGE = 64;
/** How often this replica looks for overdue requests, expired sessions and idle backends. */
const SWEEP_MS = 1000;
/** A request whose record was awaited before it started. */
const ADMITTED = Promise.resolve(true);

function frame(e: StoredEvent): string {
  return `id: ${e.seq}\nevent: ${e.type}\ndata: ${e.data}\n\n`;
}

function evicted(from: number, to: number): string {
  const count = to - from + 1;
  return JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: {
      code: -32007,
      message: `${count} event${count === 1 ? ' was' : 's were'} evicted before being read (oldest first; the session keeps the latest events only)`,
      data: { reason: 'evicted', first: from, last: to },
    },
  });
}

/**
 * One SSE stream of a session on this replica. It reads the session's stored
 * events from its cursor at the client's pace (a page, then wait for the
 * socket to drain) and writes live events as they come only once it has
 * caught up and while the client keeps up: a live batch that would leave more
 * than a replay slice unsent (1 MB answers in 256 KiB chunks) sends it back to
 * reading from Redis. Nothing waits in memory for a slow client and a client
 * that reads is never cut; one that falls behind the session's retention gets
 * the evicted range reported as an error event.
 */
class SessionStream implements LiveListener {
  /** Reading stored events (at first, and whenever the client fell behind). */
  private catchingUp = false;
  /** Live events arrived while catching up: read on before going live. */
  private more = false;

  constructor(
    readonly sessionId: string,
    readonly conn: SseConnection,
    public cursor: number,
    private readonly store: SessionStore,
    private readonly logger: Logger,
  ) {}

  deliver(events: StoredEvent[]): void {
    if (this.conn.closed) return;
    if (this.catchingUp) {
      this.more = true;
      return;
    }
    // Sized before anything is encoded: a batch that goes back to the store costs nothing here.
    let size = 0;
    for (const e of events) if (e.seq > this.cursor) size += e.data.length;
    if (size === 0) return;
    if (this.conn.wouldQueue(size)) {
      void this.catchUp();
      return;
    }
    const { frames, cursor } = this.encode(events);
    this.cursor = cursor;
    this.conn.write(chunk(Buffer.from(frames.join(''))));
  }

  /**
   * Reads stored events after the cursor at the client's pace, until nothing newer arrived meanwhile:
   * a page of at most one replay slice (in bytes), encoded and written, then the next once the socket
   * drained. While it waits, only that slice's frames are held (the page's strings are dropped).
   */
  async catchUp(): Promise<void> {
    if (this.catchingUp) return;
    this.catchingUp = true;
    try {
      for (;;) {
        this.more = false;
        const { frames, more } = await this.readPage();
        if (this.conn.closed) return;
        if (frames.length > 0) await this.conn.writeReplay(frames);
        if (this.conn.closed) return;
        if (!more && !this.more) return;
      }
    } catch (error) {
      this.logger.warn(`session ${this.sessionId}: reading its events failed (${(error as Error).message}); the client resumes`);
      this.conn.close('reading the session failed', 1000);
    } finally {
      this.catchingUp = false;
    }
  }

  /** The next page after the cursor as frames (the cursor moved past them), and whether more may be stored. */
  private async readPage(): Promise<{ frames: HubEvent[]; more: boolean }> {
    const page = await this.store.page(this.sessionId, this.cursor, REPLAY_PAGE, this.conn.replayBytes);
    const { frames, cursor } = this.encode(page.events);
    this.cursor = cursor;
    return { frames: frames.map((f) => ({ frame: Buffer.from(f) }) as HubEvent), more: page.more };
  }

  /** The frames of the events after the cursor (an evicted range as an error event), and the cursor past them. */
  private encode(events: StoredEvent[]): { frames: string[]; cursor: number } {
    const frames: string[] = [];
    let cursor = this.cursor;
    for (const e of events) {
      if (e.seq <= cursor) continue;
      if (e.seq > cursor + 1) frames.push(frame({ seq: e.seq - 1, type: 'error', data: evicted(cursor + 1, e.seq - 1) }));
      frames.push(frame(e));
      cursor = e.seq;
    }
    return { frames, cursor };
  }

  heartbeat(): void {
    this.conn.write(chunk(Buffer.from(`id: ${this.cursor}\nevent: heartbeat\ndata: {"ts":${Date.now()}}\n\n`)));
  }
}

/**
 * Streaming sessions (`/api/v1/gateway/stream`): a client opens a session on
 * some MCP servers, follows its events over SSE, and posts JSON-RPC requests
 * whose answers arrive on that stream, through whichever replica. The session
 * (record, events, pending requests) lives in Redis (RedisSessionStore); each
 * replica follows the sessions streamed through it with one blocking reader
 * (SessionStreamReader) and holds backend MCP sessions for the requests it
 * handles (SessionBackends). One replica without Redis keeps them in process
 * (MemorySessionStore, its own live feed). Closing a session frees what every replica holds
 * for it (a bus control message).
 */
@Injectable()
export class GatewaySessions implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('GatewaySessions');
  private store?: SessionStore;
  private feed?: SessionFeed;
  private readonly backends: SessionBackends;
  private readonly streams = new Map<string, Set<SessionStream>>();
  private heartbeatTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private sweeping = false;
  private lastPendingSweep = 0;
  /** Events waiting to be appended, per session: appended in batches (one Redis round trip per batch), in order. */
  private readonly queues = new Map<string, { events: { type: string; data: string }[]; dropped: number; scheduled: boolean; chain: Promise<void> }>();
  /** Backends' list_changed notifications, coalesced per session, server and list (a backend may send thousands a second). */
  private readonly listChanges = new ListChangedCoalescer(undefined, (error) => this.logger.warn(`list_changed: ${String(error)}`));

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly connector: BackendConnector,
    private readonly policy: GatewayPolicy,
    private readonly callers: GatewayCallers,
    private readonly calls: GatewayCalls,
    private readonly sse: SseStreamService,
    private readonly bus: EventBus,
    private readonly credentials: CredentialWatcher,
    metrics: MetricsService,
    @Optional() @Inject(RedisConnections) private readonly redis?: RedisConnections | null,
  ) {
    this.backends = new SessionBackends(connector, config.gateway.backendIdleMs, Math.min(config.gateway.requestTimeoutMs, 30_000), (sessionId, serverId, n) =>
      this.forwardNotification(sessionId, serverId, n),
    );
    const streams = this.streams;
    const backends = this.backends;
    new Gauge({
      name: 'registry_gateway_session_streams',
      help: 'Streaming-session SSE streams open on this replica',
      registers: [metrics.registry],
      collect() {
        let n = 0;
        for (const set of streams.values()) n += set.size;
        this.set(n);
      },
    });
    new Gauge({
      name: 'registry_gateway_backend_sessions',
      help: 'Backend MCP sessions this replica holds for streaming sessions',
      registers: [metrics.registry],
      collect() {
        this.set(backends.backendCount);
      },
    });
  }

  get enabled(): boolean {
    return this.config.gateway.sessionsEnabled;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    const g = this.config.gateway;
    const limits = { maxEvents: g.maxPendingEvents, idleMs: g.sessionIdleMs, maxPerOwner: g.maxSessionsPerClient };
    if (this.redis) {
      const store = new RedisSessionStore(this.redis.commands, this.config.redisPrefix, limits);
      const blocking = this.redis.commands.duplicate({ connectionName: `registry-gw-${this.config.replicaId}`, enableAutoPipelining: false });
      blocking.on('error', (error: Error) => this.logger.warn(`redis (session reader): ${error.message}`));
      this.store = store;
      this.feed = new SessionStreamReader(blocking, this.redis.commands, (id) => store.key('e', id));
    } else {
      // One replica without Redis: sessions live in this process.
      const store = new MemorySessionStore(limits);
      this.store = store;
      this.feed = store;
    }
    this.bus.onControl((message) => {
      if (message.op === 'gateway_session_closed' && message.sessionId) this.closedEverywhere(message.sessionId, message.reason ?? 'session closed');
      else if (message.op === 'gateway_cancel' && message.sessionId && message.clientId !== undefined) {
        this.backends.cancel(message.sessionId, message.clientId, 'cancelled by the client');
      }
    });
    this.heartbeatTimer = setInterval(() => this.heartbeat(), g.heartbeatMs);
    this.heartbeatTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.feed?.stop();
    // Sessions live on in the store: a change not yet announced is queued now (and stored as any queued notification).
    this.listChanges.close(true);
    await this.backends.closeAll();
  }

  private requireStore(): SessionStore {
    if (!this.store) throw new DomainError('not_found', 'streaming sessions are switched off (GATEWAY_SESSIONS_ENABLED=false)');
    return this.store;
  }

  /** The session if `principal` owns it; 404 otherwise (another client's session is not revealed). */
  private async owned(principal: Principal, sessionId: string): Promise<SessionRecord> {
    const store = this.requireStore();
    const session = /^[A-Za-z0-9_-]{16,64}$/.test(sessionId) ? await store.get(sessionId) : undefined;
    if (!session || session.owner !== principal.id) throw new DomainError('not_found', `no streaming session ${sessionId}`);
    return session;
  }

  // ---- create -----------------------------------------------------------------

  async create(
    principal: Principal,
    servers: string[] | undefined,
    deferred: boolean,
  ): Promise<{ session_id: string; servers: ServerStatus[]; deferred: boolean }> {
    const store = this.requireStore();
    const caller = await this.callers.resolve(principal);
    const wanted = servers ?? (await this.policy.reachableServers(caller)).map((s) => s.id);
    const statuses: ServerStatus[] = [];
    const allowed: string[] = [];
    for (const serverId of [...new Set(wanted)]) {
      const decision = await this.policy.decideServer(caller, serverId);
      if (decision.allowed) allowed.push(serverId);
      else statuses.push({ id: serverId, status: 'denied', error: new GatewayError(decision.code, decision.detail).toJsonRpc() });
    }
    if (allowed.length === 0) {
      throw new DomainError('forbidden', wanted.length === 0 ? 'you may reach no MCP server through the gateway' : 'you may reach none of these MCP servers', {
        extensions: { servers: statuses },
      });
    }
    const sessionId = randomBytes(18).toString('base64url');
    if (!(await store.create(sessionId, principal.id, allowed, deferred))) {
      throw new DomainError(
        'too_many_requests',
        `you already have ${this.config.gateway.maxSessionsPerClient} open streaming sessions; close one (DELETE) first`,
        {
          headers: { 'retry-after': '5' },
        },
      );
    }
    this.backends.remember({ id: sessionId, owner: principal.id, servers: allowed, deferred, createdAt: Date.now(), seq: 0 });
    // Initialize every allowed backend now, reporting which failed (they are retried on first use).
    const opened = await Promise.all(
      allowed.map(async (serverId): Promise<ServerStatus> => {
        const started = performance.now();
        try {
          await this.backends.get(sessionId, serverId);
          this.calls.record({ caller, serverId, tool: null, method: 'initialize', durationMs: performance.now() - started, outcome: 'ok', surface: 'session' });
          return { id: serverId, status: 'ready' };
        } catch (error) {
          const e = error instanceof GatewayError ? error : new GatewayError('backend', (error as Error).message);
          this.calls.record({
            caller,
            serverId,
            tool: null,
            method: 'initialize',
            durationMs: performance.now() - started,
            outcome: outcomeOf(e.code),
            surface: 'session',
            detail: e.message,
          });
          return { id: serverId, status: 'failed', error: e.toJsonRpc() };
        }
      }),
    );
    return { session_id: sessionId, servers: [...opened, ...statuses], deferred };
  }

  // ---- close ------------------------------------------------------------------

  async close(principal: Principal, sessionId: string): Promise<void> {
    const session = await this.owned(principal, sessionId);
    await this.requireStore().delete(sessionId, session.owner);
    this.closedEverywhere(sessionId, 'session closed');
    await this.bus
      .publishControl({ op: 'gateway_session_closed', sessionId, reason: 'session closed', from: this.config.replicaId })
      .catch((error: Error) => this.logger.warn(`announcing the close of a session failed (${error.message}); other replicas free it within their sweep`));
  }

  /** Ends this replica's streams of the session and frees its backend sessions. */
  private closedEverywhere(sessionId: string, reason: string): void {
    const streams = this.streams.get(sessionId);
    if (streams) for (const s of [...streams]) s.conn.close(reason);
    this.listChanges.forget(sessionId);
    void this.backends.close(sessionId, reason);
  }

  // ---- stream -----------------------------------------------------------------

  async stream(request: FastifyRequest, reply: FastifyReply, principal: Principal, sessionId: string, lastEventId: number | undefined): Promise<void> {
    const session = await this.owned(principal, sessionId);
    const store = this.requireStore();
    const feed = this.feed!;
    // A cursor ahead of the session (events it never had) resumes from the session's last event.
    const cursor = Math.min(lastEventId ?? 0, session.seq);
    await this.sse.open(request, reply, principal, EventFilter.parse(undefined, principal.role), undefined, async (conn) => {
      const stream = new SessionStream(sessionId, conn, cursor, store, this.logger);
      let set = this.streams.get(sessionId);
      if (!set) this.streams.set(sessionId, (set = new Set()));
      set.add(stream);
      // Join first, then read what is stored: what is appended meanwhile is read on (deduplicated by number).
      const caughtUp = stream.catchUp();
      feed.join(sessionId, stream.cursor, stream);
      this.sse.whenClosed(conn, () => {
        feed.leave(sessionId, stream);
        const s = this.streams.get(sessionId);
        s?.delete(stream);
        if (s?.size === 0) this.streams.delete(sessionId);
      });
      void store.touch(sessionId, principal.id).catch(() => undefined);
      await caughtUp;
    });
  }

  private heartbeat(): void {
    const touched: { id: string; owner: string }[] = [];
    for (const [sessionId, set] of this.streams) {
      for (const s of set) s.heartbeat();
      const owner = [...set][0]?.conn.userId;
      if (owner) touched.push({ id: sessionId, owner });
    }
    for (const t of touched) void this.store?.touch(t.id, t.owner).catch(() => undefined);
  }

  /** Overdue requests get their timeout error; streams and backends of sessions that expired are freed. */
  private async sweep(): Promise<void> {
    const store = this.store;
    if (!store || this.sweeping) return;
    this.sweeping = true;
    try {
      const ids = [...new Set([...this.streams.keys(), ...this.backends.sessionIds()])];
      const exists = await store.exists(ids);
      ids.forEach((id, i) => {
        if (!exists[i]) this.closedEverywhere(id, 'session expired');
      });
      const now = Date.now();
      if (now - this.lastPendingSweep >= Math.min(5000, this.config.gateway.requestTimeoutMs / 4)) {
        this.lastPendingSweep = now;
        // Safety net for requests whose replica died: the stream's replica answers them with a timeout.
        for (const id of this.streams.keys()) {
          for (const p of await store.pending(id)) {
            if (p.deadline + 2000 < now) await this.answerError(id, p.requestId, p.id, new GatewayError('timeout', 'no answer within the request timeout'));
          }
        }
      }
      await this.backends.sweepIdle();
    } catch (error) {
      this.logger.warn(`session sweep failed: ${(error as Error).message}`);
    } finally {
      this.sweeping = false;
    }
  }

  // ---- requests ---------------------------------------------------------------

  /** Accepts a JSON-RPC request (answered on the stream) or notification; returns its request id. */
  async request(principal: Principal, sessionId: string, message: JsonRpcRequest): Promise<{ request_id: string | null }> {
    if (message.id !== undefined) return this.call(principal, sessionId, message, message.id);
    const session = await this.owned(principal, sessionId);
    const store = this.requireStore();
    void store.touch(sessionId, session.owner).catch(() => undefined);
    // A notification: only cancellation means something to the gateway.
    if (message.method === 'notifications/cancelled') {
      const clientId = message.params?.requestId;
      if (typeof clientId === 'string' || typeof clientId === 'number') {
        await this.bus.publishControl({ op: 'gateway_cancel', sessionId, clientId, from: this.config.replicaId });
      }
    }
    return { request_id: null };
  }

  /**
   * A request with an id: the session checked and the request recorded as pending in one round trip, then
   * handled. A session this replica already serves (its facts remembered, fewer than MAX_PENDING_REQUESTS
   * calls in flight here) does not wait for that round trip: the call starts at once, its answer is appended
   * only once the record is in (`admitted`), and a refusal (the session gone meanwhile, or full across
   * replicas) aborts it — the POST gets the 404 or 429 either way.
   */
  private async call(principal: Principal, sessionId: string, message: JsonRpcRequest, id: JsonRpcId): Promise<{ request_id: string }> {
    const store = this.requireStore();
    const requestId = randomBytes(9).toString('base64url');
    const deadline = Date.now() + this.config.gateway.requestTimeoutMs;
    const wellFormed = /^[A-Za-z0-9_-]{16,64}$/.test(sessionId);
    const recorded = wellFormed ? store.request(sessionId, principal.id, { requestId, id, deadline }, MAX_PENDING_REQUESTS) : Promise.resolve(undefined);
    const known = wellFormed ? this.backends.known(sessionId) : undefined;
    const run = (session: SessionRecord, caller: GatewayCaller, admitted: Promise<boolean>) =>
      void this.handle(session, principal, caller, requestId, message, admitted).catch((error: Error) =>
        this.logger.warn(`request ${requestId} failed: ${error.message}`),
      );
    if (known && known.record.owner === principal.id && known.inflight < MAX_PENDING_REQUESTS - 1) {
      // Handled before anything else is awaited, so a failed record is never an unhandled rejection.
      const admitted = recorded.then(
        (r) => typeof r === 'object',
        () => false,
      );
      run(known.record, await this.callers.resolve(principal), admitted);
      this.admitted(sessionId, await recorded);
    } else {
      const [result, caller] = await Promise.all([recorded, this.callers.resolve(principal)]);
      const session = this.admitted(sessionId, result);
      this.backends.remember(session);
      run(session, caller, ADMITTED);
    }
    return { request_id: requestId };
  }

  /** The session a request was recorded in (which restarted its idle timer), or the 404 / 429 that refuses the request. */
  private admitted(sessionId: string, result: SessionRecord | 'full' | undefined): SessionRecord {
    if (result === undefined) throw new DomainError('not_found', `no streaming session ${sessionId}`);
    if (result === 'full') {
      throw new DomainError('too_many_requests', `this session already has ${MAX_PENDING_REQUESTS} requests awaiting an answer`, {
        headers: { 'retry-after': '1' },
      });
    }
    return result;
  }

  /**
   * Runs a request and appends its one answer — once `admitted` says it was recorded (a refused one is aborted, not
   * answered). A credential revoked, expired or given another role while the request runs aborts it, as it ends the
   * session's streams: the backend is sent notifications/cancelled.
   */
  private async handle(
    session: SessionRecord,
    principal: Principal,
    caller: GatewayCaller,
    requestId: string,
    message: JsonRpcRequest,
    admitted: Promise<boolean>,
  ): Promise<void> {
    const started = performance.now();
    const id = message.id!;
    const tracked = this.backends.track(session.id, requestId, id);
    const untrack = this.credentials.track(principal, { close: (reason) => tracked.abort(reason) });
    void admitted.then((ok) => ok || tracked.abort('request refused'));
    let serverId: string | null = null;
    let tool: string | null = null;
    try {
      const name = message.params?.name;
      if (session.deferred && message.method === 'tools/call' && GatewaySessions.isMeta(name)) {
        const result = await this.callMeta(session, caller, name, toolArguments(message.params?.arguments));
        if (!(await admitted)) return;
        await this.answer(session.id, requestId, id, result);
        this.calls.record({ caller, serverId, tool: name, method: message.method, durationMs: performance.now() - started, outcome: 'ok', surface: 'session' });
        return;
      }
      const r = route(session.servers, message.method, message.params);
      if (session.deferred && r.kind === 'server' && r.tool !== null) {
        const full = typeof name === 'string' ? name : `${r.serverId}__${r.tool}`;
        if (!(await this.requireStore().activated(session.id)).includes(full)) {
          throw new GatewayError('invalid_params', `tool ${full} is not activated in this session: find it with search_tools, then activate_tools`, {
            tool: full,
          });
        }
      }
      let result: Record<string, unknown>;
      if (r.kind === 'local') {
        result = {};
      } else if (r.kind === 'broadcast') {
        const options = { signal: tracked.signal, timeoutMs: this.config.gateway.requestTimeoutMs };
        const listed = await broadcastList(r.method, r.servers, caller, this.policy, (s) => this.backend(session.id, s), options);
        result = listed.result;
        if (session.deferred && r.method === 'tools/list') result = { ...result, tools: (await this.catalog(session, listed.tools ?? [])).exposed() };
      } else {
        serverId = r.serverId;
        tool = r.tool;
        result = await this.forward(session, caller, requestId, r.serverId, r.method, r.params, r.tool, tracked.signal, admitted);
      }
      if (!(await admitted)) return;
      await this.answer(session.id, requestId, id, result);
      this.calls.record({ caller, serverId, tool, method: message.method, durationMs: performance.now() - started, outcome: 'ok', surface: 'session' });
    } catch (error) {
      if (!(await admitted)) return;
      const e =
        error instanceof GatewayError ? error : new GatewayError(tracked.signal.aborted ? 'cancelled' : 'internal', (error as Error).message ?? String(error));
      await this.answerError(session.id, requestId, id, e);
      this.calls.record({
        caller,
        serverId,
        tool,
        method: message.method,
        durationMs: performance.now() - started,
        outcome: outcomeOf(e.code),
        surface: 'session',
        detail: e.message,
      });
    } finally {
      untrack();
      tracked.done();
    }
  }

  /** Deferred sessions: `search_tools`/`activate_tools` answered here; other tools must be activated first. */
  private async forward(
    session: SessionRecord,
    caller: GatewayCaller,
    requestId: string,
    serverId: string,
    method: string,
    params: Record<string, unknown> | undefined,
    tool: string | null,
    signal: AbortSignal,
    admitted: Promise<boolean>,
  ): Promise<Record<string, unknown>> {
    const timeoutMs = this.config.gateway.requestTimeoutMs;
    if (method === 'tools/call' && tool !== null) {
      const args = toolArguments(params?.arguments);
      const decision = await this.policy.decideTool(caller, serverId, tool);
      if (!decision.allowed) throw new GatewayError(decision.code, decision.detail, { server: serverId, tool });
      return await retryOnStaleSession(
        () => this.backend(session.id, serverId),
        (backend) =>
          backend.callTool(tool, args, {
            signal,
            timeoutMs,
            // The session's request timeout is a deadline (recorded with the request, for every replica's sweep):
            // progress does not extend it, so the call ends, cancelled at the backend, when the client is told.
            progressResetsTimeout: false,
            // Progress of a request not yet recorded waits for it (in order); a refused one's is dropped.
            onProgress: (p) =>
              void admitted.then(
                (ok) =>
                  ok &&
                  this.enqueue(
                    session.id,
                    'notification',
                    JSON.stringify({ request_id: requestId, server: serverId, jsonrpc: '2.0', method: 'notifications/progress', params: p }),
                  ),
              ),
          }),
      );
    }
    const decision = await this.policy.decideServer(caller, serverId);
    if (!decision.allowed) throw new GatewayError(decision.code, decision.detail, { server: serverId });
    return retryOnStaleSession(
      () => this.backend(session.id, serverId),
      (backend) => backend.request(method, params, { signal, timeoutMs }),
    );
  }

  /**
   * Queues an event for the session (notifications, progress): appended with
   * the others queued in the same turn in one round trip. More than
   * GATEWAY_MAX_PENDING_EVENTS waiting (Redis slower than the backend) drops
   * the oldest, and an `error` event says how many.
   */
  private enqueue(sessionId: string, type: string, data: string): void {
    let q = this.queues.get(sessionId);
    if (!q) {
      q = { events: [], dropped: 0, scheduled: false, chain: Promise.resolve() };
      this.queues.set(sessionId, q);
    }
    if (q.events.length >= this.config.gateway.maxPendingEvents) {
      q.events.shift();
      q.dropped++;
    }
    q.events.push({ type, data });
    if (!q.scheduled) {
      q.scheduled = true;
      setImmediate(() => void this.flush(sessionId));
    }
  }

  /** Appends what is queued for the session; resolves once everything queued before the call is stored. */
  private flush(sessionId: string): Promise<void> {
    const q = this.queues.get(sessionId);
    const store = this.store;
    if (!q || !store) return Promise.resolve();
    q.chain = q.chain.then(async () => {
      q.scheduled = false;
      while (q.events.length > 0 || q.dropped > 0) {
        const batch = q.events.splice(0, 2000);
        if (q.dropped > 0) {
          batch.unshift({
            type: 'error',
            data: JSON.stringify({
              jsonrpc: '2.0',
              id: null,
              error: {
                code: -32007,
                message: `${q.dropped} notifications were dropped (oldest first): the session's store fell behind`,
                data: { reason: 'dropped', count: q.dropped },
              },
            }),
          });
          q.dropped = 0;
        }
        await store.appendMany(sessionId, batch).catch((error: Error) => this.logger.warn(`storing ${batch.length} session events failed: ${error.message}`));
      }
      if (!q.scheduled && q.events.length === 0 && this.queues.get(sessionId) === q) this.queues.delete(sessionId);
    });
    return q.chain;
  }

  private backend(sessionId: string, serverId: string): Promise<BackendSession> {
    return this.backends.get(sessionId, serverId);
  }

  private async catalog(session: SessionRecord, tools: Parameters<DeferredToolCatalog['replaceTools']>[0]): Promise<DeferredToolCatalog> {
    return new DeferredToolCatalog(tools, await this.requireStore().activated(session.id));
  }

  private async answer(sessionId: string, requestId: string, id: JsonRpcId, result: Record<string, unknown>): Promise<void> {
    const store = this.requireStore();
    // The request's notifications (progress) come before its answer.
    await this.flush(sessionId);
    const json = JSON.stringify(result);
    if (json.length <= CHUNK_BYTES) {
      await this.settle(
        sessionId,
        requestId,
        'response',
        `{"request_id":${JSON.stringify(requestId)},"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${json}}`,
      );
      return;
    }
    // Large results: the result's JSON text in pieces, then the response that says how many.
    const count = Math.ceil(json.length / CHUNK_BYTES);
    for (let i = 0; i < count; i++) {
      const data = json.slice(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
      await store.append(sessionId, 'chunk', JSON.stringify({ request_id: requestId, id, index: i, count, data }));
    }
    await this.settle(sessionId, requestId, 'response', JSON.stringify({ request_id: requestId, jsonrpc: '2.0', id, result_chunks: count }));
  }

  /**
   * Stores a request's answer (once: a request already answered or timed out stores nothing) and
   * hands it to this replica's streams of the session as soon as Redis has numbered it.
   */
  private async settle(sessionId: string, requestId: string, type: 'response' | 'error', data: string): Promise<void> {
    const store = this.requireStore();
    const seq = await store.answer(sessionId, requestId, type, data);
    if (seq > 0) this.feed?.offer(sessionId, { seq, type, data });
  }

  private async answerError(sessionId: string, requestId: string, id: JsonRpcId | null, error: GatewayError): Promise<void> {
    await this.flush(sessionId);
    await this.settle(sessionId, requestId, 'error', JSON.stringify({ request_id: requestId, jsonrpc: '2.0', id, error: error.toJsonRpc() }));
  }

  /**
   * Backend notifications outside a request (list changes, logging, resource updates) go to the session's stream.
   * A list change is coalesced per server and list: the first at once, those within LIST_CHANGED_WINDOW_MS once
   * more at the window's end (the latest), so a backend flooding list_changed costs the session a few events a
   * second, not thousands, and the last change is still announced after it happened.
   */
  private forwardNotification(sessionId: string, serverId: string, n: JSONRPCNotification): void {
    const event = () => this.enqueue(sessionId, 'notification', JSON.stringify({ server: serverId, ...n }));
    if (LIST_CHANGED_METHODS.has(n.method)) this.listChanges.changed(sessionId, `${serverId}\n${n.method}`, event);
    else event();
  }

  /** Deferred sessions: runs a meta tool; activation adds to the session's set and announces the list change. */
  async callMeta(session: SessionRecord, caller: GatewayCaller, name: string, args: Record<string, unknown> | undefined): Promise<Record<string, unknown>> {
    const listed = await broadcastList('tools/list', session.servers, caller, this.policy, (s) => this.backend(session.id, s), {
      timeoutMs: this.config.gateway.requestTimeoutMs,
    });
    const catalog = await this.catalog(session, listed.tools ?? []);
    const outcome = catalog.callMeta(name, args);
    if (!outcome) throw new GatewayError('method_not_found', `unknown meta tool ${name}`);
    if (outcome.changed) {
      await this.requireStore().activate(session.id, catalog.activated());
      await this.requireStore().append(
        session.id,
        'notification',
        JSON.stringify({ server: null, jsonrpc: '2.0', method: 'notifications/tools/list_changed' }),
      );
    }
    return outcome.result;
  }

  /** Whether `name` is one of the deferred-loading meta tools. */
  static isMeta(name: unknown): name is string {
    return typeof name === 'string' && META_TOOL_NAMES.includes(name);
  }
}
