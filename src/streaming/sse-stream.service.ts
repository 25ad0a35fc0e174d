import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { CredentialWatcher } from '../auth/credential-watcher.js';
import type { Principal } from '../auth/principal.js';
import { ClusterState } from '../bus/event-bus.js';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { LifecycleService } from '../ops/lifecycle.service.js';
import { MetricsService } from '../ops/metrics.service.js';
import type { EventFilter } from './event-filter.js';
import { CLOSE_TIMEOUT_MS, KEEPALIVE_CHUNK, SSE_CODEC, SseConnection, type SseOwner } from './sse.connection.js';
import { StreamHub } from './stream.hub.js';

/**
 * Opens SSE streams: connection limits (cluster-wide), the hand-written
 * response head, then replay + live through the hub. One keep-alive timer for
 * all connections; on drain every client is told to reconnect elsewhere.
 *
 * A stream lives for hours, so nothing of its request is kept: the socket is
 * released from the HTTP server (see http-release.ts), filters are shared
 * by key, and a connection holds no closures of its own.
 */
@Injectable()
export class SseStreamService implements OnModuleInit, BeforeApplicationShutdown, SseOwner {
  private readonly logger = new Logger('SseStreams');
  private readonly connections = new Set<SseConnection>();
  /** One EventFilter per distinct filter: connections share it instead of keeping their request's. */
  private readonly filters = new Map<string, EventFilter>();
  private keepAliveTimer?: NodeJS.Timeout;
  /** Connections told to close by the drain, until their sockets are gone. */
  private closing: SseConnection[] = [];
  private readonly disconnects: Counter<'reason'>;
  private readonly closeHooks = new WeakMap<SseConnection, (reason: string) => void>();

  constructor(
    private readonly hub: StreamHub,
    private readonly cluster: ClusterState,
    private readonly lifecycle: LifecycleService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    metrics: MetricsService,
    private readonly credentials: CredentialWatcher,
  ) {
    const connections = this.connections;
    new Gauge({
      name: 'registry_sse_connections',
      help: 'Open SSE connections on this replica',
      registers: [metrics.registry],
      collect() {
        this.set(connections.size);
      },
    });
    this.disconnects = new Counter({
      name: 'registry_sse_disconnects_total',
      help: 'SSE disconnects by reason',
      labelNames: ['reason'],
      registers: [metrics.registry],
    });
  }

  onModuleInit(): void {
    this.keepAliveTimer = setInterval(() => {
      for (const conn of this.connections) conn.write(KEEPALIVE_CHUNK);
    }, this.config.stream.keepAliveMs);
    this.keepAliveTimer.unref();
    this.lifecycle.onDrain(() => this.drain());
  }

  get size(): number {
    return this.connections.size;
  }

  /** Open SSE connections on this replica by principal id (for the cluster's connection listing). */
  countsByPrincipal(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const conn of this.connections) counts.set(conn.userId, (counts.get(conn.userId) ?? 0) + 1);
    return counts;
  }

  /**
   * `follow` (default: the change stream from `cursor`) is what the open
   * connection is fed with: the health stream (src/health) passes its own and
   * gets the same limits, drain, keep-alive and credential checks.
   */
  async open(
    request: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    filter: EventFilter,
    cursor: number | undefined,
    follow: (conn: SseConnection) => Promise<void> = (conn) => this.hub.follow(conn, SSE_CODEC, cursor),
  ): Promise<void> {
    if (this.lifecycle.isDraining) throw new DomainError('service_unavailable', 'this replica is draining; reconnect', { headers: { 'retry-after': '1' } });
    const slot = await this.cluster.acquireConnection(principal.id, this.config.limits.connectionsPerUser, this.config.limits.connectionsTotal);
    if (slot !== 'ok') {
      const detail =
        slot === 'user_limit'
          ? `you already have ${this.config.limits.connectionsPerUser} open stream connections`
          : 'the service is at its stream connection limit';
      throw new DomainError('too_many_requests', detail, { headers: { 'retry-after': '5' } });
    }
    if (request.method === 'HEAD') {
      // Counted like a GET (a client over its limit gets the same 429), but a
      // HEAD has no body: the stream's headers, and the slot back at once.
      void this.cluster.releaseConnection(principal.id).catch(() => undefined);
      void reply.status(200).headers({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }).send();
      return;
    }
    const socket = request.raw.socket;
    if (socket.destroyed || !socket.writable || this.lifecycle.isDraining) {
      // The client left (or the replica started draining) while the slot was
      // being acquired: its 'close' has fired already, so nothing else would
      // ever give the slot back.
      void this.cluster.releaseConnection(principal.id).catch(() => undefined);
      // Only a client still there is told the replica drains (one that hung up was answered 503 "draining" in the log).
      if (this.lifecycle.isDraining && !socket.destroyed && socket.writable)
        throw new DomainError('service_unavailable', 'this replica is draining; reconnect', { headers: { 'retry-after': '1' } });
      reply.hijack();
      socket.destroy();
      return;
    }
    reply.hijack();
    const conn = new SseConnection(socket, this.sharedFilter(filter), this.config.stream.maxBufferBytes, this, principal.id);
    this.connections.add(conn);
    // Revoked, expired or re-roled credentials end the stream on every replica (its slot freed by connectionClosed).
    this.credentials.track(principal, conn);
    conn.open({ requestId: String(request.id), retryMs: this.config.stream.retryMs });
    try {
      await follow(conn);
    } catch (error) {
      this.logger.warn(`replay failed: ${(error as Error).message}`);
      conn.close('replay failed', this.config.stream.retryMs);
    }
  }

  /** Runs `hook` once when `conn` ends (whoever ends it): for streams fed by something other than the hub. */
  whenClosed(conn: SseConnection, hook: (reason: string) => void): void {
    if (conn.closed) hook('closed');
    else this.closeHooks.set(conn, hook);
  }

  connectionClosed(conn: SseConnection, reason: string): void {
    const hook = this.closeHooks.get(conn);
    if (hook) {
      this.closeHooks.delete(conn);
      try {
        hook(reason);
      } catch (error) {
        this.logger.warn(`a stream close hook failed: ${(error as Error).message}`);
      }
    }
    this.connections.delete(conn);
    this.credentials.untrack(conn);
    this.hub.leave(conn);
    this.disconnects.inc({ reason: reason.split(':')[0] });
    void this.cluster.releaseConnection(conn.userId).catch(() => undefined);
  }

  private sharedFilter(filter: EventFilter): EventFilter {
    const known = this.filters.get(filter.key);
    if (known) return known;
    if (this.filters.size < 1024) this.filters.set(filter.key, filter);
    return filter;
  }

  /**
   * SIGTERM: every client gets a short, jittered `retry:` and the end of its
   * stream. Resolves once every socket is gone; a client that does not read
   * cannot hold this up: each close is cut after CLOSE_TIMEOUT_MS, and what is
   * left then is destroyed here.
   */
  async drain(): Promise<void> {
    const closing = [...this.connections];
    for (const conn of closing) conn.close('draining', 250 + Math.floor(Math.random() * 1000));
    this.closing = closing;
    const until = Date.now() + CLOSE_TIMEOUT_MS + 500;
    while (closing.some((c) => !c.socketClosed) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    for (const conn of closing) conn.destroy('draining');
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.keepAliveTimer);
    // Hijacked sockets are not in the HTTP server's connection list: the
    // server would wait on them forever. Cut what is left, closing ones too.
    for (const conn of [...this.connections, ...this.closing]) conn.destroy('shutdown');
    this.closing = [];
  }
}
