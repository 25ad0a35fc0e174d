import { io, type Socket } from 'socket.io-client';
import {
  type ChangeMessage,
  type ClientToServerEvents,
  type DisconnectNotice,
  type PresenceUser,
  type ServerToClientEvents,
  type SocketError,
  type SubscribeAck,
  SOCKET_PATH,
} from '@protocol';
import type { Credentials } from './api';

/**
 * - `connecting`: the first connection is being made.
 * - `live`: subscribed; changes arrive as they happen.
 * - `paused`: the socket is down (or the subscription refused): the GUI polls
 *   the REST API and the socket keeps trying; back to `live` with every event
 *   of the gap, replayed from the last seq.
 * - `stopped`: the server said not to come back (credential revoked), or signed out.
 */
export type LiveStatus = 'connecting' | 'live' | 'paused' | 'stopped';

export interface LiveHandlers {
  status(status: LiveStatus, detail?: string): void;
  /** A change, in seq order, each once (duplicates after a resume are dropped here). */
  change(change: ChangeMessage): void;
  /** The position was older than retention: refetch everything. */
  reset(cursor: number, reason: string): void;
  presence(users: PresenceUser[]): void;
  /** The handshake was refused as unauthenticated: the session is gone. */
  unauthorized(detail: string): void;
}

type TypedSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const SUBSCRIBE_TIMEOUT_MS = 5000;
/** Reconnect delays (socket.io's own backoff, with jitter). */
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 3000;
/** A first connection that has not gone live by then counts as paused (the GUI starts polling). */
const FIRST_CONNECT_GRACE_MS = 3000;

export class LiveClient {
  private socket?: TypedSocket;
  private _status: LiveStatus = 'connecting';
  private presenceUsers = new Map<string, PresenceUser>();
  private retryTimer?: ReturnType<typeof setTimeout>;
  private graceTimer?: ReturnType<typeof setTimeout>;
  private subscribing = 0;
  private stoppedByServer?: string;
  /** Every event applied so far has seq <= lastSeq; resumes ask for seq > lastSeq. */
  lastSeq: number;
  /** Events received (live and replayed), for the activity view and tests. */
  received = 0;

  constructor(
    private readonly credentials: Credentials,
    startSeq: number,
    private readonly handlers: LiveHandlers,
  ) {
    this.lastSeq = startSeq;
  }

  get status(): LiveStatus {
    return this._status;
  }

  start(): void {
    const socket: TypedSocket = io(window.location.origin, {
      path: SOCKET_PATH,
      // WebSocket only: no long-polling, so no sticky sessions are needed between replicas.
      transports: ['websocket'],
      auth: this.credentials.kind === 'key' ? { token: this.credentials.key } : undefined,
      withCredentials: true,
      reconnectionDelay: RECONNECT_MIN_MS,
      reconnectionDelayMax: RECONNECT_MAX_MS,
      randomizationFactor: 0.3,
      timeout: 8000,
    });
    this.socket = socket;
    this.graceTimer = setTimeout(() => {
      if (this._status === 'connecting') this.setStatus('paused', 'could not connect yet');
    }, FIRST_CONNECT_GRACE_MS);

    socket.on('connect', () => void this.subscribe());
    socket.on('event', (change) => {
      if (typeof change.seq !== 'number') {
        this.handlers.change(change);
        return;
      }
      if (change.seq <= this.lastSeq) return;
      this.lastSeq = change.seq;
      this.received++;
      this.handlers.change(change);
    });
    socket.on('cursor', ({ cursor }) => {
      if (cursor > this.lastSeq) this.lastSeq = cursor;
    });
    socket.on('reset', ({ cursor, reason }) => {
      this.lastSeq = cursor;
      this.handlers.reset(cursor, reason);
    });
    socket.on('presence', ({ users }) => {
      this.presenceUsers = new Map(users.map((u) => [u.userId, u]));
      this.emitPresence();
    });
    socket.on('user.connected', ({ user }) => {
      this.presenceUsers.set(user.userId, user);
      this.emitPresence();
    });
    socket.on('user.disconnected', ({ user }) => {
      // `tabs` left: a user with another tab open stays online.
      if (user.tabs > 0) this.presenceUsers.set(user.userId, user);
      else this.presenceUsers.delete(user.userId);
      this.emitPresence();
    });
    socket.on('closing', (notice: DisconnectNotice) => {
      if (!notice.reconnect) this.stoppedByServer = notice.reason;
    });
    socket.on('disconnect', (reason) => {
      if (this._status === 'stopped') return;
      if (this.stoppedByServer) {
        this.setStatus('stopped', this.stoppedByServer);
        this.handlers.unauthorized(this.stoppedByServer);
        return;
      }
      this.setStatus('paused', reason);
      // The server ended the socket on purpose (drain, an admin): socket.io does not retry that by itself.
      if (reason === 'io server disconnect') this.retryLater(RECONNECT_MIN_MS);
    });
    socket.on('connect_error', (error: Error & { data?: SocketError }) => {
      if (this._status === 'stopped') return;
      const code = error.data?.code;
      if (code === 'unauthorized') {
        this.setStatus('stopped', error.data?.detail);
        this.handlers.unauthorized(error.data?.detail ?? 'signed out');
        return;
      }
      if (this._status !== 'connecting') this.setStatus('paused', error.data?.detail ?? error.message);
      // Refused by the server (limits, origin): socket.io leaves it to us; network errors it retries itself.
      if (!socket.active) this.retryLater(code === 'too_many_requests' ? 5000 : RECONNECT_MAX_MS);
    });
  }

  stop(): void {
    this.setStatus('stopped');
    clearTimeout(this.retryTimer);
    clearTimeout(this.graceTimer);
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
  }

  private async subscribe(): Promise<void> {
    const socket = this.socket!;
    const attempt = ++this.subscribing;
    let ack: SubscribeAck;
    try {
      ack = (await socket.timeout(SUBSCRIBE_TIMEOUT_MS).emitWithAck('subscribe', { channels: ['changes'], lastEventId: this.lastSeq })) as SubscribeAck;
    } catch {
      if (attempt === this.subscribing && socket.connected) this.retrySubscribe(socket, 'the subscription was not acknowledged');
      return;
    }
    if (attempt !== this.subscribing || !socket.connected) return;
    if (!ack.ok) {
      this.retrySubscribe(socket, ack.error.detail);
      return;
    }
    clearTimeout(this.graceTimer);
    this.setStatus('live');
  }

  private retrySubscribe(socket: TypedSocket, detail: string): void {
    this.setStatus('paused', detail);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (socket.connected && this._status !== 'stopped') void this.subscribe();
    }, RECONNECT_MAX_MS);
  }

  private retryLater(ms: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this._status !== 'stopped' && this.socket && !this.socket.connected) this.socket.connect();
    }, ms);
  }

  private setStatus(status: LiveStatus, detail?: string): void {
    if (this._status === 'stopped' && status !== 'stopped') return;
    const changed = status !== this._status;
    this._status = status;
    if (status !== 'live') {
      // Presence is only known while connected.
      if (this.presenceUsers.size > 0) {
        this.presenceUsers.clear();
        this.emitPresence();
      }
    }
    if (changed) this.handlers.status(status, detail);
  }

  private emitPresence(): void {
    this.handlers.presence([...this.presenceUsers.values()].sort((a, b) => a.name.localeCompare(b.name)));
  }
}
