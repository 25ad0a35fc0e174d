import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, Optional } from '@nestjs/common';
import { EventBus } from '../bus/event-bus.js';
import { RedisConnections } from '../bus/redis.connections.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { PresenceUser } from '../events/socket-protocol.js';
import { SseStreamService } from '../streaming/sse-stream.service.js';
import { MetricsService } from '../ops/metrics.service.js';
import { Gauge } from 'prom-client';

/** One replica's open connections, as published for the others. */
export interface ReplicaConnections {
  readonly replica: string;
  readonly at: string;
  readonly sse: Record<string, number>;
  readonly socketio: Record<string, number>;
  /** Display names and kinds of the principals above (Socket.IO principals at least). */
  readonly principals: Record<string, { name: string; kind: 'user' | 'api_key' }>;
}

/** How often a replica republishes its connections (and recomputes presence); its entry lives 4× as long. */
const PUBLISH_MS = 2000;
const ENTRY_TTL_MS = 4 * PUBLISH_MS;

export interface PresenceListener {
  presenceChanged(joined: PresenceUser[], left: PresenceUser[], now: PresenceUser[]): void;
}

/**
 * Who is connected, across the cluster. Each replica keeps its own counts
 * (SSE and Socket.IO, by principal) and publishes them to Redis under a key of
 * its own that expires a few seconds after its last refresh, so a killed
 * replica's share disappears by itself. Presence (the GUI's "who is online")
 * is the union of every replica's Socket.IO principals, with their tab count:
 * recomputed when any replica says something changed (a control message) and
 * every PUBLISH_MS anyway, so a missed hint or a dead replica heals within a
 * few seconds. Without Redis, the replica's own counts are the cluster's.
 */
@Injectable()
export class ConnectionRegistry implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ConnectionRegistry');
  private readonly socketio = new Map<string, number>();
  private readonly principals = new Map<string, { name: string; kind: 'user' | 'api_key' }>();
  private presence = new Map<string, PresenceUser>();
  /** The presence as last computed, sorted (undefined before the first computation). */
  private presenceList?: PresenceUser[];
  private timer?: NodeJS.Timeout;
  private publishSoon?: NodeJS.Timeout;
  private listener?: PresenceListener;
  private recomputing?: Promise<void>;
  private again = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly bus: EventBus,
    private readonly sse: SseStreamService,
    metrics: MetricsService,
    @Optional() private readonly redis?: RedisConnections,
  ) {
    const sseService = this.sse;
    const socketio = this.socketio;
    // One gauge over both transports: what the HPA scales on (k8s/README.md).
    new Gauge({
      name: 'registry_stream_connections',
      help: 'Open stream connections on this replica by transport',
      labelNames: ['transport'],
      registers: [metrics.registry],
      collect() {
        this.set({ transport: 'sse' }, sseService.size);
        let sockets = 0;
        for (const n of socketio.values()) sockets += n;
        this.set({ transport: 'socketio' }, sockets);
      },
    });
  }

  onApplicationBootstrap(): void {
    this.bus.onControl((message) => {
      if (message.op === 'presence') this.recomputeSoon();
    });
    this.timer = setInterval(() => {
      void this.publish().then(() => this.recomputeSoon());
    }, PUBLISH_MS);
    this.timer.unref();
  }

  listen(listener: PresenceListener): void {
    this.listener = listener;
  }

  /** A Socket.IO connection of `principal` opened (+1) or closed (-1). */
  socketChanged(principalId: string, name: string, kind: 'user' | 'api_key', delta: 1 | -1): void {
    const next = (this.socketio.get(principalId) ?? 0) + delta;
    if (next > 0) {
      this.socketio.set(principalId, next);
      this.principals.set(principalId, { name, kind });
    } else {
      this.socketio.delete(principalId);
      this.principals.delete(principalId);
    }
    // Coalesced: a burst of connects costs one publish and one hint.
    this.publishSoon ??= setTimeout(() => {
      this.publishSoon = undefined;
      void this.publish().then(() => this.bus.publishControl({ op: 'presence', from: this.config.replicaId }).catch(() => this.recomputeSoon()));
    }, 50);
  }

  localSocketCount(principalId: string): number {
    return this.socketio.get(principalId) ?? 0;
  }

  private own(): ReplicaConnections {
    return {
      replica: this.config.replicaId,
      at: new Date().toISOString(),
      sse: Object.fromEntries(this.sse.countsByPrincipal()),
      socketio: Object.fromEntries(this.socketio),
      principals: Object.fromEntries(this.principals),
    };
  }

  private key(replica: string): string {
    return `${this.config.redisPrefix}:conns:${replica}`;
  }

  private async publish(): Promise<void> {
    const redis = this.redis?.commands;
    if (!redis || redis.status !== 'ready') return;
    await redis.set(this.key(this.config.replicaId), JSON.stringify(this.own()), 'PX', ENTRY_TTL_MS).catch(() => undefined);
  }

  /** Every live replica's connections (this one's fresh, the others' as last published). */
  async all(): Promise<ReplicaConnections[]> {
    const mine = this.own();
    const redis = this.redis?.commands;
    if (!redis || redis.status !== 'ready') return [mine];
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${this.config.redisPrefix}:conns:*`, 'COUNT', 200);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0' && keys.length < 10_000);
    const others = keys.filter((k) => k !== this.key(this.config.replicaId));
    const values = others.length > 0 ? await redis.mget(...others) : [];
    const out = [mine];
    for (const value of values) {
      if (!value) continue;
      try {
        out.push(JSON.parse(value) as ReplicaConnections);
      } catch {
        // a malformed entry is skipped; it expires
      }
    }
    return out;
  }

  private recomputeSoon(): void {
    if (this.recomputing) {
      this.again = true;
      return;
    }
    this.recomputing = this.recompute()
      .catch((error: Error) => this.logger.warn(`presence recompute failed: ${error.message}`))
      .finally(() => {
        this.recomputing = undefined;
        if (this.again) {
          this.again = false;
          this.recomputeSoon();
        }
      });
  }

  /** Presence now (Socket.IO principals with their tab counts over every replica). */
  /** Who was online at the last computation (on every presence change and every 2 s), without a Redis read; undefined before the first. */
  lastPresence(): PresenceUser[] | undefined {
    return this.presenceList;
  }

  async currentPresence(): Promise<PresenceUser[]> {
    const users = new Map<string, PresenceUser>();
    for (const replica of await this.all()) {
      for (const [userId, tabs] of Object.entries(replica.socketio)) {
        const who = replica.principals[userId] ?? { name: userId, kind: 'user' as const };
        const known = users.get(userId);
        users.set(userId, { userId, name: who.name, kind: who.kind, tabs: (known?.tabs ?? 0) + tabs });
      }
    }
    return [...users.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  private async recompute(): Promise<void> {
    const now = await this.currentPresence();
    const next = new Map(now.map((u) => [u.userId, u]));
    const joined: PresenceUser[] = [];
    const left: PresenceUser[] = [];
    for (const [id, user] of next) {
      const before = this.presence.get(id);
      if (!before || user.tabs > before.tabs) joined.push(user);
      else if (user.tabs < before.tabs) left.push(user); // a tab closed; still online with fewer
    }
    for (const [id, user] of this.presence) if (!next.has(id)) left.push({ ...user, tabs: 0 });
    this.presence = next;
    this.presenceList = now;
    if (joined.length > 0 || left.length > 0) this.listener?.presenceChanged(joined, left, now);
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.publishSoon);
    // Leave at once rather than when the entry expires.
    await this.redis?.commands.del(this.key(this.config.replicaId)).catch(() => undefined);
  }
}
