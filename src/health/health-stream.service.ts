import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Counter } from 'prom-client';
import type { Role } from '../auth/roles.js';
import { MetricsService } from '../ops/metrics.service.js';
import { EventFilter } from '../streaming/event-filter.js';
import type { HubEvent } from '../streaming/event-window.js';
import { StreamHub } from '../streaming/stream.hub.js';
import type { Codec, Subscriber } from '../streaming/subscriber.js';
import { HealthRuntime } from './health.runtime.js';
import { type HealthSnapshot, HealthService } from './health.service.js';
import type { CheckResult } from './health.types.js';

/** The recorded events the health stream carries (resumable, ordered with every other change). */
export const HEALTH_EVENTS = 'mcp_server.health_changed,mcp_server.circuit_changed';

/**
 * One client of the health stream, whatever its transport (SSE today,
 * Socket.IO's `health` channel next): a change-stream Subscriber (the hub
 * writes the recorded events to it and moves its cursor) plus the two frames
 * only this stream has.
 */
export interface HealthClient<P> extends Subscriber<P> {
  /** The first frame of a stream that did not resume: every server's state and the cursor it is consistent with. */
  snapshot(payload: P): void;
  /**
   * A live check result. Not recorded, not replayed: a transport whose client
   * is behind (over its small buffer bound) drops it instead of queueing it.
   */
  check(payload: P): void;
}

/** How a transport encodes the health stream (each frame once per replica, not per client). */
export interface HealthCodec<P> extends Codec<P> {
  snapshot(snapshot: HealthSnapshot): P;
  /** `json` is the check result as published (CheckResult). */
  check(json: string): P;
}

export interface HealthFollow {
  /** Only these servers (`?servers=`); undefined: all. */
  readonly servers?: ReadonlySet<string>;
  /** Resume after this seq (Last-Event-ID): replay, no snapshot. Undefined: snapshot, then live. */
  readonly cursor?: number;
  readonly role: Role;
}

interface Live {
  readonly client: HealthClient<any>;
  readonly codec: HealthCodec<any>;
  readonly servers?: ReadonlySet<string>;
  /** What the hub holds for this client (removed from the hub once the client closed). */
  readonly sub: Subscriber<any>;
}

const ids = new WeakMap<HubEvent, string>();
/** The server an event is about (its `id`), read from the shared JSON once per event. */
function serverOf(e: HubEvent): string {
  let id = ids.get(e);
  if (id === undefined) {
    id = (JSON.parse(e.json) as { id: string }).id;
    ids.set(e, id);
  }
  return id;
}

/**
 * The health stream, transport-neutral: a snapshot, then the recorded health
 * events (`mcp_server.health_changed`, `mcp_server.circuit_changed`) through
 * the replica's StreamHub — so they are resumable with Last-Event-ID, ordered
 * with every other change and replayed from the window like the change
 * stream — plus `health.check` frames from every replica's probes, live only.
 *
 * `?servers=` narrows both: the hub groups clients by (transport, filter), so
 * each distinct server set gets a codec of its own (one encoding per set and
 * batch) whose batches keep only its servers' events; a batch with none of
 * them becomes a cursor frame, so the client's position still moves.
 */
@Injectable()
export class HealthStream implements OnModuleInit, OnApplicationShutdown {
  private readonly live = new Set<Live>();
  private readonly narrowed = new Map<string, Codec<any>>();
  private sweeper?: NodeJS.Timeout;
  private readonly dropped: Counter;
  private readonly sent: Counter;

  constructor(
    private readonly hub: StreamHub,
    private readonly health: HealthService,
    runtime: HealthRuntime,
    metrics: MetricsService,
  ) {
    this.dropped = new Counter({
      name: 'registry_health_check_frames_dropped_total',
      help: 'health.check frames not sent to a health-stream client that was behind',
      registers: [metrics.registry],
    });
    this.sent = new Counter({
      name: 'registry_health_check_frames_sent_total',
      help: 'health.check frames written to health-stream clients',
      registers: [metrics.registry],
    });
    runtime.checks.onCheck((result, json) => this.broadcast(result, json));
  }

  onModuleInit(): void {
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  /** Counts a check frame a transport dropped for a client that was behind. */
  droppedCheck(): void {
    this.dropped.inc();
  }

  /**
   * Follows the health stream: without a cursor the snapshot first (consistent
   * with the replica's head, which is its `id`), then live; with one, a replay
   * of the health events after it, then live. Resolves once live.
   */
  async follow<P>(client: HealthClient<P>, codec: HealthCodec<P>, options: HealthFollow): Promise<void> {
    const servers = options.servers;
    const sub = this.narrow(client, codec, servers, options.role);
    const entry: Live = { client, codec, servers, sub };
    let cursor = options.cursor;
    if (cursor === undefined) {
      // Every event up to the head was committed before this read, so the
      // snapshot reflects it; events after the head are delivered after the
      // snapshot (an event the snapshot already reflects carries the same
      // state again: applying it twice is harmless).
      cursor = this.hub.head;
      const snapshot = await this.health.snapshot(cursor, servers);
      if (client.closed) return;
      client.snapshot(codec.snapshot(snapshot));
    }
    await this.hub.follow(sub, this.codecFor(codec, servers), cursor);
    if (!client.closed) this.live.add(entry);
    else this.hub.leave(sub);
  }

  /** The hub's view of a client: its replay narrowed to its servers. */
  private narrow<P>(client: HealthClient<P>, codec: HealthCodec<P>, servers: ReadonlySet<string> | undefined, role: Role): Subscriber<P> {
    const filter = EventFilter.parse(HEALTH_EVENTS, role);
    return {
      filter,
      get cursor() {
        return client.cursor;
      },
      set cursor(value: number) {
        client.cursor = value;
      },
      get closed() {
        return client.closed;
      },
      write: (payload) => client.write(payload),
      writeReplay: async (events) => {
        if (!servers) return client.writeReplay(events);
        const mine = events.filter((e) => servers.has(serverOf(e)));
        if (mine.length > 0) await client.writeReplay(mine);
        const last = events[events.length - 1].seq;
        if (mine.length === 0 || mine[mine.length - 1].seq !== last) client.write(codec.cursor(last));
      },
      reset: (cursor, reason) => client.reset(cursor, reason),
      close: (reason) => client.close(reason),
    };
  }

  private codecFor<P>(codec: HealthCodec<P>, servers: ReadonlySet<string> | undefined): Codec<P> {
    const key = servers ? [...servers].sort().join(',') : '*';
    const cacheKey = `${codec.transport}|${key}`;
    let narrowed = this.narrowed.get(cacheKey) as Codec<P> | undefined;
    if (!narrowed) {
      narrowed = servers
        ? {
            transport: `${codec.transport}+health:${key}`,
            events: (events) => {
              const mine = events.filter((e) => servers.has(serverOf(e)));
              return mine.length > 0 ? codec.events(mine) : codec.cursor(events[events.length - 1].seq);
            },
            cursor: (seq) => codec.cursor(seq),
          }
        : { transport: `${codec.transport}+health`, events: (events) => codec.events(events), cursor: (seq) => codec.cursor(seq) };
      if (this.narrowed.size < 1024) this.narrowed.set(cacheKey, narrowed);
    }
    return narrowed;
  }

  /** A check result from any replica: encoded once per codec, written to every live client that wants it. */
  private broadcast(result: CheckResult, json: string): void {
    if (this.live.size === 0) return;
    const encoded = new Map<HealthCodec<any>, unknown>();
    for (const entry of this.live) {
      if (entry.client.closed) {
        this.remove(entry);
        continue;
      }
      if (entry.servers && !entry.servers.has(result.serverId)) continue;
      let payload = encoded.get(entry.codec);
      if (payload === undefined) {
        payload = entry.codec.check(json);
        encoded.set(entry.codec, payload);
      }
      entry.client.check(payload);
      this.sent.inc();
    }
  }

  private remove(entry: Live): void {
    this.live.delete(entry);
    this.hub.leave(entry.sub);
  }

  /** Clients whose transport closed leave the hub (the transport only knows its own subscriber object). */
  private sweep(): void {
    for (const entry of this.live) if (entry.client.closed) this.remove(entry);
  }

  get clientCount(): number {
    return this.live.size;
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
  }
}
