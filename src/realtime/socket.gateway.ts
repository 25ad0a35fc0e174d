import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import { Server, type Socket } from 'socket.io';
import { z } from 'zod';
import { Authenticator } from '../auth/authenticator.js';
import { CredentialWatcher } from '../auth/credential-watcher.js';
import type { Principal } from '../auth/principal.js';
import { ClusterState, EventBus } from '../bus/event-bus.js';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import {
  type Channel,
  CHANNEL_EVENTS,
  CHANNELS,
  type ClientToServerEvents,
  type HealthCheckMessage,
  type PresenceUser,
  type ServerToClientEvents,
  SOCKET_PATH,
  type SocketError,
  type SubscribeAck,
  type UnsubscribeAck,
} from '../events/socket-protocol.js';
import { HealthRuntime } from '../health/health.runtime.js';
import { HealthService } from '../health/health.service.js';
import { LifecycleService } from '../ops/lifecycle.service.js';
import { MetricsService } from '../ops/metrics.service.js';
import { EventFilter } from '../streaming/event-filter.js';
import { StreamHub } from '../streaming/stream.hub.js';
import { ConnectionRegistry, type PresenceListener } from './connection-registry.js';
import { closeTransport, SOCKET_CODEC, SocketSubscriber } from './socket.subscriber.js';

/** At most one presence broadcast per this period (ms), longer with many sockets; see presenceChanged. */
const PRESENCE_BROADCAST_MS = 1000;
/** Presence broadcasts are spaced so that they cost at most this many socket writes per second. */
const PRESENCE_WRITES_PER_S = 2000;
/** Distinct filters kept (filterFor); past it the cache starts over. */
const FILTER_CACHE_SIZE = 256;

type IoServer = Server<ClientToServerEvents, ServerToClientEvents>;
type IoSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketState>;

/** What the server keeps per socket (socket.data). */
interface SocketState {
  principal: Principal;
  channels: Channel[];
  events?: string;
  sub?: SocketSubscriber;
  untrack?: () => void;
  /** Gives the slot back if the engine connection closes before 'connection' (disarmed once connected). */
  releaseIfDropped?: () => void;
}

const subscribeSchema = z.strictObject({
  channels: z.array(z.enum(CHANNELS)).min(1).max(CHANNELS.length),
  events: z.union([z.string().max(2000), z.array(z.string().max(100)).max(64)]).optional(),
  lastEventId: z.union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().max(20)]).optional(),
});
const unsubscribeSchema = z.strictObject({ channels: z.array(z.enum(CHANNELS)).max(CHANNELS.length).optional() });

/**
 * The Socket.IO transport at `/ws/v1` (protocol: src/events/socket-protocol.ts),
 * a second transport on the same hub as SSE: same replay, live hand-over,
 * filters, role filtering, cursor and reset semantics, connection slots,
 * revocation and drain.
 *
 * Fail-closed handshake: an API key (`auth.token`, or the Authorization
 * header) or the session cookie, which must come from an allowed Origin
 * (cross-site WebSocket hijacking is CSRF for sockets). No principal, no
 * socket. Each socket takes a connection slot (shared with SSE, per user and
 * cluster-wide); over the limit is a `connect_error` with code
 * `too_many_requests`.
 */
@Injectable()
export class SocketGateway implements OnApplicationBootstrap, BeforeApplicationShutdown, PresenceListener {
  private readonly logger = new Logger('SocketGateway');
  private io?: IoServer;
  private readonly sockets = new Set<IoSocket>();
  private readonly disconnects: Counter<'reason'>;
  /** Filters by role, channels and `events` (see filterFor). */
  private readonly filters = new Map<string, EventFilter>();
  /** Presence changes not yet broadcast, by user (the last one wins). */
  private readonly presenceOut = new Map<string, { event: 'user.connected' | 'user.disconnected'; user: PresenceUser }>();
  private presenceTimer?: NodeJS.Timeout;
  private lastPresenceBroadcast = 0;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly authenticator: Authenticator,
    private readonly credentials: CredentialWatcher,
    private readonly cluster: ClusterState,
    private readonly hub: StreamHub,
    private readonly lifecycle: LifecycleService,
    private readonly registry: ConnectionRegistry,
    private readonly bus: EventBus,
    private readonly health: HealthService,
    private readonly healthRuntime: HealthRuntime,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    metrics: MetricsService,
  ) {
    const sockets = this.sockets;
    new Gauge({
      name: 'registry_socketio_connections',
      help: 'Open Socket.IO connections on this replica',
      registers: [metrics.registry],
      collect() {
        this.set(sockets.size);
      },
    });
    this.disconnects = new Counter({
      name: 'registry_socketio_disconnects_total',
      help: 'Socket.IO disconnects by reason',
      labelNames: ['reason'],
      registers: [metrics.registry],
    });
  }

  onApplicationBootstrap(): void {
    const httpServer = this.adapterHost.httpAdapter.getHttpServer() as HttpServer;
    const io: IoServer = new Server(httpServer, {
      path: SOCKET_PATH,
      serveClient: false,
      // Same-origin browsers and non-browser clients only: no CORS headers at all.
      cors: undefined,
      maxHttpBufferSize: 64 * 1024,
      // A client that vanished (an abandoned long-poll session after a
      // failover) frees its slot and presence within ~20 s, not 45.
      pingInterval: 10_000,
      pingTimeout: 10_000,
      connectTimeout: 10_000,
      // A draining replica refuses new transports at the engine level: the
      // client's reconnection (with backoff) then lands on another replica.
      allowRequest: (_req, callback) => callback(this.lifecycle.isDraining ? 'draining' : null, !this.lifecycle.isDraining),
    });
    io.use((socket, next) => {
      this.handshake(socket as IoSocket).then(
        () => next(),
        (error: unknown) => next(socketError(error)),
      );
    });
    io.on('connection', (socket) => this.connected(socket as IoSocket));
    this.io = io;
    this.registry.listen(this);
    this.lifecycle.onDrain(() => this.drain());
    // Every replica's probe results, live, for sockets on the health channel.
    this.healthRuntime.checks.onCheck((result) => this.healthCheck(result));
    this.bus.onControl((message) => {
      if (message.op === 'disconnect' && message.principalId) this.disconnectPrincipal(message.principalId, message.reason ?? 'disconnected by an admin');
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Authenticates, checks the Origin of cookie handshakes, takes a connection slot. Throws to refuse. */
  private async handshake(socket: IoSocket): Promise<void> {
    if (this.lifecycle.isDraining) throw new DomainError('service_unavailable', 'this replica is draining; reconnect');
    const req = socket.request;
    const token = typeof socket.handshake.auth?.token === 'string' ? socket.handshake.auth.token : undefined;
    const headers = token !== undefined ? { ...req.headers, authorization: `Bearer ${token}`, cookie: undefined } : req.headers;
    const authRequest = { method: 'GET', headers, protocol: forwardedProto(req), host: req.headers.host };
    const principal = await this.authenticator.authenticate(authRequest);
    // A browser attaches the cookie to a cross-site WebSocket by itself: only allowed origins may use it.
    if (principal.via === 'cookie') this.authenticator.assertOrigin(authRequest);
    const slot = await this.cluster.acquireConnection(principal.id, this.config.limits.connectionsPerUser, this.config.limits.connectionsTotal);
    if (slot !== 'ok') {
      throw new DomainError(
        'too_many_requests',
        slot === 'user_limit'
          ? `you already have ${this.config.limits.connectionsPerUser} open stream connections`
          : 'the service is at its stream connection limit',
      );
    }
    // The client may have left while we authenticated and took the slot:
    // socket.io then drops the socket without a 'connection', so give it back here.
    if (socket.conn.readyState !== 'open') {
      void this.cluster.releaseConnection(principal.id).catch(() => undefined);
      throw new DomainError('service_unavailable', 'the connection closed during the handshake');
    }
    const releaseIfDropped = () => {
      if (!this.sockets.has(socket)) void this.cluster.releaseConnection(principal.id).catch(() => undefined);
    };
    socket.conn.once('close', releaseIfDropped);
    socket.data.releaseIfDropped = releaseIfDropped;
    socket.data.principal = principal;
    socket.data.channels = [];
  }

  private connected(socket: IoSocket): void {
    if (socket.data.releaseIfDropped) socket.conn.off('close', socket.data.releaseIfDropped);
    socket.data.releaseIfDropped = undefined;
    // The handshake's HTTP request (headers, raw headers, its socket's upgrade state) was read by
    // handshake(): engine.io would keep it for the socket's life. socket.io documents dropping it
    // to save memory; nothing reads socket.request after this (socket.handshake keeps the headers).
    (socket.conn as unknown as { request: IncomingMessage | null }).request = null;
    const principal = socket.data.principal;
    if (!principal || socket.disconnected) {
      if (principal) void this.cluster.releaseConnection(principal.id).catch(() => undefined);
      return;
    }
    this.sockets.add(socket);
    socket.data.untrack = this.credentials.track(principal, {
      close: (reason) => this.kick(socket, reason, false),
    });
    this.registry.socketChanged(principal.id, principal.name, principal.kind, 1);
    socket.on('subscribe', (request, ack) => void this.onSubscribe(socket, request, ack));
    socket.on('unsubscribe', (request, ack) => void this.onUnsubscribe(socket, request, ack));
    socket.on('disconnect', (reason) => this.disconnected(socket, reason));
    // Who is online: the registry's last computed presence (recomputed on every change and every 2 s; the changes
    // after it come as user.connected / user.disconnected), read from Redis only before the first computation.
    const known = this.registry.lastPresence();
    if (known) socket.emit('presence', { users: known });
    else
      void this.registry.currentPresence().then(
        (users) => socket.emit('presence', { users }),
        () => undefined,
      );
  }

  private disconnected(socket: IoSocket, reason: string): void {
    if (!this.sockets.delete(socket)) return;
    const { principal, sub, untrack } = socket.data;
    untrack?.();
    if (sub) this.endSubscription(socket);
    this.disconnects.inc({ reason: reason.split(':')[0].slice(0, 40) });
    this.registry.socketChanged(principal.id, principal.name, principal.kind, -1);
    void this.cluster.releaseConnection(principal.id).catch(() => undefined);
  }

  private async onSubscribe(socket: IoSocket, request: unknown, ack: unknown): Promise<void> {
    const answer = typeof ack === 'function' ? (ack as (a: SubscribeAck) => void) : undefined;
    try {
      const parsed = subscribeSchema.safeParse(request);
      if (!parsed.success) throw zodError(parsed.error);
      const { channels, events, lastEventId } = parsed.data;
      const wanted = [...new Set([...socket.data.channels, ...channels])];
      const eventsSpec = events === undefined ? socket.data.events : Array.isArray(events) ? events.join(',') : events;
      const filter = this.filterFor(wanted, eventsSpec, socket.data.principal);
      let cursor = lastEventId === undefined ? socket.data.sub?.cursor : parseLastEventId(lastEventId);
      const addsHealth = wanted.includes('health') && !socket.data.channels.includes('health');
      socket.data.channels = wanted;
      socket.data.events = eventsSpec;
      if (addsHealth) {
        // The state first (consistent with the head), then the changes after it as events.
        const snapshot = await this.health.snapshot(this.hub.head);
        socket.emit('health.snapshot', snapshot);
        // A fresh subscription goes on from the snapshot, not from a head that moved while it was read.
        cursor ??= snapshot.cursor;
      }
      const sub = await this.follow(socket, filter, cursor);
      answer?.({ ok: true, cursor: sub.cursor, channels: wanted });
    } catch (error) {
      answer?.({ error: socketError(error).data });
    }
  }

  private async onUnsubscribe(socket: IoSocket, request: unknown, ack: unknown): Promise<void> {
    const answer = typeof ack === 'function' ? (ack as (a: UnsubscribeAck) => void) : undefined;
    try {
      const parsed = unsubscribeSchema.safeParse(request ?? {});
      if (!parsed.success) throw zodError(parsed.error);
      const drop = parsed.data.channels ?? socket.data.channels;
      const left = socket.data.channels.filter((c) => !drop.includes(c));
      const cursor = socket.data.sub?.cursor ?? this.hub.head;
      socket.data.channels = left;
      if (left.length === 0) {
        this.endSubscription(socket);
        answer?.({ ok: true, cursor, channels: [] });
        return;
      }
      const sub = await this.follow(socket, this.filterFor(left, socket.data.events, socket.data.principal), cursor);
      answer?.({ ok: true, cursor: sub.cursor, channels: left });
    } catch (error) {
      answer?.({ error: socketError(error).data });
    }
  }

  /**
   * Channels ∪, then ∩ the `events` filter, then what the role may read (system notices always ride along).
   * Filters are immutable: sockets asking for the same get the same one (a bounded cache).
   */
  private filterFor(channels: Channel[], events: string | undefined, principal: Principal): EventFilter {
    const key = `${principal.role}\n${channels.join(',')}\n${events ?? ''}`;
    let filter = this.filters.get(key);
    if (!filter) {
      filter = this.parseFilter(channels, events, principal);
      if (this.filters.size >= FILTER_CACHE_SIZE) this.filters.clear();
      this.filters.set(key, filter);
    }
    return filter;
  }

  private parseFilter(channels: Channel[], events: string | undefined, principal: Principal): EventFilter {
    const fromChannels = channels.includes('changes') ? '*' : [...new Set(channels.flatMap((c) => CHANNEL_EVENTS[c])), 'system.*'].join(',');
    const base = EventFilter.parse(fromChannels, principal.role, 'channels');
    if (events === undefined || events.trim() === '' || events.trim() === '*') return base;
    const narrowed = EventFilter.parse(events, principal.role, 'events');
    const both = base.types.filter((t) => narrowed.matches(t));
    if (both.length === 0) throw DomainError.field('events', 'no event type of these channels matches this filter (or your role may not read them)');
    return EventFilter.parse(both.join(','), principal.role, 'events');
  }

  /**
   * (Re)starts the socket's subscription from `cursor` (undefined: from the
   * head): the previous subscription stops where it is and the new one goes on
   * from its cursor, so changing channels loses and repeats nothing.
   */
  private async follow(socket: IoSocket, filter: EventFilter, cursor: number | undefined): Promise<SocketSubscriber> {
    this.endSubscription(socket);
    const sub = new SocketSubscriber(socket, filter, this.config.stream.maxBufferBytes, (slow) => {
      this.disconnects.inc({ reason: 'slow consumer' });
      slow.drop();
    });
    socket.data.sub = sub;
    await this.hub.follow(sub, SOCKET_CODEC, cursor);
    return sub;
  }

  private endSubscription(socket: IoSocket): void {
    const sub = socket.data.sub;
    if (!sub) return;
    sub.closed = true;
    this.hub.leave(sub);
    socket.data.sub = undefined;
  }

  /** Ends a socket: `reconnect` false (revoked, kicked) makes the client stay away (`io server disconnect`). */
  private kick(socket: IoSocket, reason: string, reconnect: boolean): void {
    if (socket.disconnected) return;
    socket.emit('closing', { reason, reconnect });
    if (!reconnect) socket.disconnect(true); // "io server disconnect": the client stays away
    closeTransport(socket); // and the transport goes even if the client stopped reading
  }

  /** Drops `principalId`'s sockets on this replica (the control message reaches every replica). */
  disconnectPrincipal(principalId: string, reason: string): number {
    let count = 0;
    for (const socket of [...this.sockets]) {
      if (socket.data.principal.id !== principalId) continue;
      this.kick(socket, reason, true);
      count++;
    }
    return count;
  }

  /** Live probe results for sockets on the `health` channel; dropped for a socket that is behind. */
  healthCheck(message: HealthCheckMessage): void {
    for (const socket of this.sockets) {
      if (!socket.data.channels.includes('health') && !socket.data.channels.includes('mcp_servers')) continue;
      const conn = socket.conn as unknown as { writeBuffer: unknown[] };
      if (conn.writeBuffer.length > 16) continue;
      socket.volatile.emit('health.check', message);
    }
  }

  /**
   * Presence changes go to every socket, so each broadcast is one write per
   * socket: they are gathered and sent at most once per PRESENCE_BROADCAST_MS
   * (and, with many sockets, no more often than PRESENCE_WRITES_PER_S writes
   * a second allow: every 5 s at 10,000 sockets), the last change of each
   * user only (its `tabs` is the current count), so that many sockets opening
   * or closing at once (a reconnect storm, a deployment) cost a bounded number
   * of writes per second, not O(sockets) per change.
   */
  presenceChanged(joined: PresenceUser[], left: PresenceUser[]): void {
    if (!this.io) return;
    for (const user of joined) this.presenceOut.set(user.userId, { event: 'user.connected', user });
    for (const user of left) this.presenceOut.set(user.userId, { event: 'user.disconnected', user });
    if (this.presenceTimer || this.presenceOut.size === 0) return;
    const period = Math.max(PRESENCE_BROADCAST_MS, (this.sockets.size * 1000) / PRESENCE_WRITES_PER_S);
    const wait = Math.max(0, this.lastPresenceBroadcast + period - Date.now());
    this.presenceTimer = setTimeout(this.broadcastPresence, wait);
    this.presenceTimer.unref();
  }

  private readonly broadcastPresence = (): void => {
    this.presenceTimer = undefined;
    this.lastPresenceBroadcast = Date.now();
    const changes = [...this.presenceOut.values()];
    this.presenceOut.clear();
    if (!this.io) return;
    for (const { event, user } of changes) this.io.emit(event, { user });
  };

  /** SIGTERM: every client is told why and its transport closed; it reconnects to another replica and resumes. */
  private async drain(): Promise<void> {
    for (const socket of [...this.sockets]) this.kick(socket, 'draining', true);
    const until = Date.now() + 2000;
    while (this.sockets.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  }

  beforeApplicationShutdown(): void {
    clearTimeout(this.presenceTimer);
    // Close every engine connection (WebSocket and long-poll) without closing the HTTP server: Fastify does that.
    for (const socket of [...this.sockets]) socket.disconnect(true);
    this.io?.engine.close();
  }
}

function forwardedProto(req: IncomingMessage): string {
  const forwarded = req.headers['x-forwarded-proto'];
  if (typeof forwarded === 'string' && forwarded !== '') return forwarded.split(',')[0].trim();
  return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
}

function parseLastEventId(value: number | string): number {
  if (typeof value === 'number') return value;
  if (!/^\d{1,16}$/.test(value.trim())) throw DomainError.field('lastEventId', 'must be a non-negative integer event id');
  return Number(value.trim());
}

function zodError(error: z.ZodError): DomainError {
  const issue = error.issues[0];
  const field = issue.path.length > 0 ? issue.path.join('.') : '(message)';
  return DomainError.field(field, issue.message);
}

/** Any error as what the protocol sends (`connect_error` data, or an ack's `error`). */
function socketError(error: unknown): Error & { data: SocketError } {
  const e = error instanceof DomainError ? error : undefined;
  const data: SocketError = e
    ? { code: e.code, detail: e.detail, ...(e.errors[0]?.field ? { field: e.errors[0].field } : {}) }
    : { code: 'internal_error', detail: 'the server could not handle this' };
  return Object.assign(new Error(data.detail), { data });
}
