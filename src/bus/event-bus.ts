import type { WireEvent } from './wire-event.js';

/** What a replica's stream hub hears from the bus. */
export interface BusListener {
  /** A batch of sequenced events, in seq order within the batch. */
  onEvents(events: WireEvent[]): void;
  /** The bus (re)connected: messages may have been lost, back-fill from the outbox. */
  onResync(): void;
}

/**
 * A command or hint for every replica (not a change event: not sequenced, not
 * kept). At-most-once: a replica that misses one must not be wrong for long
 * (e.g. presence is also recomputed periodically).
 */
export interface ControlMessage {
  /**
   * `disconnect`: drop this principal's sockets; `presence`: someone's presence changed, recompute now;
   * `credentials`: a credential was revoked or changed, forget cached ones and re-check open streams now;
   * `gateway_session_closed`: a gateway streaming session was closed, free what any replica holds for it;
   * `gateway_cancel`: the client cancelled a request of a gateway session (`clientId`), abort it wherever it runs.
   */
  readonly op: 'disconnect' | 'presence' | 'credentials' | 'gateway_session_closed' | 'gateway_cancel';
  readonly principalId?: string;
  /** `gateway_*`: the streaming session. */
  readonly sessionId?: string;
  /** `gateway_cancel`: the client's JSON-RPC id of the request. */
  readonly clientId?: string | number;
  readonly reason?: string;
  /** The replica that sent it. */
  readonly from: string;
}

/**
 * The pub/sub backbone. Redis in a cluster, in-process for one replica; both
 * carry the same encoded batches so the code paths are the same.
 */
export abstract class EventBus {
  abstract publish(events: readonly WireEvent[]): Promise<void>;
  abstract subscribe(listener: BusListener): void;
  /** Sends a control message to every replica, this one included. */
  abstract publishControl(message: ControlMessage): Promise<void>;
  /** Hears control messages (every listener gets every message). */
  abstract onControl(listener: (message: ControlMessage) => void): void;
  abstract readonly kind: 'redis' | 'memory';
  abstract isHealthy(): boolean;
}

/** Outcome of asking for a stream connection slot. */
export type SlotResult = 'ok' | 'user_limit' | 'total_limit';

/**
 * Cluster-wide state that must outlive a replica: stream connection counts per
 * user and in total. Each replica's share expires with it.
 */
export abstract class ClusterState {
  abstract acquireConnection(userId: string, perUser: number, total: number): Promise<SlotResult>;
  abstract releaseConnection(userId: string): Promise<void>;
  abstract connectionCounts(userId: string): Promise<{ user: number; total: number }>;
}
