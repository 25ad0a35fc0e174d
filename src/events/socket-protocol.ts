/**
 * The Socket.IO protocol at path `/ws/v1`: one typed event map shared by the
 * server (src/realtime), the admin GUI (gui/) and the tests. Types and
 * constants only, no imports from Node or Nest, so the browser build can use
 * this file as it is.
 *
 * Handshake: the GUI's session cookie (same origin) or an API key in
 * `auth.token` (`io(url, { path: SOCKET_PATH, auth: { token } })`); cookie
 * handshakes must come from an allowed Origin (ALLOWED_ORIGINS). A rejected
 * handshake is a `connect_error` whose `data` is a `SocketError`.
 *
 * Subscribing: `emitWithAck('subscribe', { channels, events?, lastEventId? })`.
 * A socket has one subscription; `subscribe` adds channels to it (and may set
 * a new event filter), `unsubscribe` removes channels. Whatever changes, the
 * stream goes on from the socket's cursor: nothing is lost or repeated.
 * Events then arrive as `event` messages, in seq order, each once. `cursor`
 * messages move the client's position past events its filter skipped; keep
 * the last `seq`/`cursor` seen and send it as `lastEventId` when subscribing
 * after a reconnect (any replica). `reset` means the position is older than
 * retention: refetch state (REST or `GET /api/v1/discovery`) and go on from
 * the cursor given.
 */

/** Socket.IO path (not a namespace): `io(origin, { path: SOCKET_PATH })`. */
export const SOCKET_PATH = '/ws/v1';

/**
 * What a socket can subscribe to: every change it may read (`changes`), one
 * resource kind's changes, or MCP server health (`health`: health and circuit
 * changes, plus live `health.check` results once the health module runs).
 */
export const CHANNELS = ['changes', 'health', 'agents', 'prompts', 'mcp_servers', 'trust_rules'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Event types each channel carries (`changes`: all that the role may read; `system.*` notices ride on every channel). */
export const CHANNEL_EVENTS: Record<Channel, readonly string[]> = {
  changes: ['*'],
  health: ['mcp_server.health_changed', 'mcp_server.circuit_changed'],
  agents: ['agent.*'],
  prompts: ['prompt.*'],
  mcp_servers: ['mcp_server.*'],
  trust_rules: ['trust_rule.*'],
};

/**
 * Admin notices: posted with `POST /api/v1/admin/notices`, delivered like every
 * change (outbox, seq, resume) as an `event` whose `type` is the kind, whose `id`
 * is the notice's id and whose `data` is `{ message, expiresAt }`.
 */
export const NOTICE_KINDS = ['system.alert', 'system.maintenance'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export interface SubscribeRequest {
  channels: Channel[];
  /** Narrows further: exact types and `resource.*`, as an array or comma-separated. */
  events?: string[] | string;
  /** Resume after this seq (the last `seq` or `cursor` the client saw). */
  lastEventId?: number | string;
}

export interface UnsubscribeRequest {
  /** Channels to drop; none (or all of them) ends the subscription. */
  channels?: Channel[];
}

export interface SocketError {
  /** `bad_request`, `unauthorized`, `forbidden`, `too_many_requests`, `service_unavailable`, ... */
  code: string;
  detail: string;
  /** The offending field of the request, when there is one. */
  field?: string;
}

export type Ack<T> = ({ ok: true } & T) | { ok?: undefined; error: SocketError };
/**
 * Sent once the subscription is live: any replay has been written before it, so
 * `cursor` is the position after the replayed events (where live delivery
 * goes on), not the `lastEventId` asked for.
 */
export type SubscribeAck = Ack<{ cursor: number; channels: Channel[] }>;
export type UnsubscribeAck = Ack<{ cursor: number; channels: Channel[] }>;

/** A change as delivered (the same delta as the SSE `data:`). */
export interface ChangeMessage {
  seq: number;
  type: string;
  resource: string;
  id: string;
  action: string;
  version?: number;
  actor?: string;
  ts: string;
  data?: Record<string, unknown>;
}

export interface CursorMessage {
  cursor: number;
}

export interface ResetMessage {
  cursor: number;
  reason: string;
}

/** Who is connected over Socket.IO, across replicas (a user with two tabs counts once, `tabs: 2`). */
export interface PresenceUser {
  userId: string;
  name: string;
  kind: 'user' | 'api_key';
  tabs: number;
}

export interface PresenceChange {
  user: PresenceUser;
}

export interface PresenceSnapshot {
  users: PresenceUser[];
}

/** Live result of one health probe (not persisted; dropped for slow consumers). The same object as the SSE `health.check` frame. */
export interface HealthCheckMessage {
  serverId: string;
  ok: boolean;
  /** `good`, `slow` (over its latency threshold), `partial`, `failed`. */
  quality: string;
  latencyMs: number;
  at: string;
  /** The step that failed: `connect`, `initialize`, `ping`, `tools/list`, `egress`, `timeout`. */
  step?: string;
  error?: string;
  toolCount?: number;
  replica: string;
}

/** One MCP server's health (as `GET /api/v1/health` shows it). */
export interface ServerHealthMessage {
  id: string;
  name: string;
  enabled: boolean;
  /** `healthy`, `degraded`, `unhealthy`, `unknown`. */
  status: string;
  reason: string | null;
  latencyMs: number | null;
  checkedAt: string | null;
  circuit: { state: string; reason: string | null; since: string | null; failures: number; retryAt: string | null };
}

/** Sent when a subscription gains the `health` channel: every server's state, consistent with `cursor`; changes follow as `event`s. */
export interface HealthSnapshotMessage {
  cursor: number;
  servers: ServerHealthMessage[];
}

export interface ServerToClientEvents {
  event: (change: ChangeMessage) => void;
  cursor: (message: CursorMessage) => void;
  reset: (message: ResetMessage) => void;
  /** Sent once after connecting, then kept current with the two below. */
  presence: (snapshot: PresenceSnapshot) => void;
  /** A principal came online, or opened another tab (`tabs` is the new count). */
  'user.connected': (change: PresenceChange) => void;
  /** A principal closed its last tab (`tabs: 0`), or one of several (`tabs` > 0: still online). */
  'user.disconnected': (change: PresenceChange) => void;
  'health.snapshot': (snapshot: HealthSnapshotMessage) => void;
  'health.check': (check: HealthCheckMessage) => void;
  /**
   * Sent just before the server ends the socket, with why. `reconnect: true`
   * (draining, slow consumer, disconnected by an admin): the transport is closed,
   * the client sees `disconnect` with "transport close" and socket.io-client
   * reconnects by itself; subscribe again with your last seq. `reconnect: false`
   * (credential revoked or changed): `disconnect` with "io server disconnect",
   * and the client stays away.
   */
  closing: (notice: DisconnectNotice) => void;
}

export interface ClientToServerEvents {
  subscribe: (request: SubscribeRequest, ack: (answer: SubscribeAck) => void) => void;
  unsubscribe: (request: UnsubscribeRequest, ack: (answer: UnsubscribeAck) => void) => void;
}

/** Why the server ends a socket (see `closing`). */
export interface DisconnectNotice {
  /** e.g. `draining` (reconnect: another replica answers), `credential revoked`, `slow consumer`, `disconnected by an admin`. */
  reason: string;
  /** Whether reconnecting makes sense (false for a revoked credential). */
  reconnect: boolean;
}
