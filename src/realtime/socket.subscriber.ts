import type { Socket } from 'socket.io';
import type { HubEvent } from '../streaming/event-window.js';
import type { EventFilter } from '../streaming/event-filter.js';
import { CLOSE_TIMEOUT_MS } from '../streaming/sse.connection.js';
import type { Codec, Subscriber } from '../streaming/subscriber.js';

/**
 * Socket.IO packets are written pre-encoded (socket.io's own broadcast does the
 * same): `2["event",<json>]` is a Socket.IO EVENT packet on the main
 * namespace; engine.io adds its own `4` (message) in front. The change's JSON is
 * the publisher's, used verbatim, so an event is serialized once per cluster
 * and framed once per replica.
 */
type Packets = string[];

const PACKET = Symbol('socket.io packet');
type CachedEvent = HubEvent & { [PACKET]?: string };

function eventPacket(e: HubEvent): string {
  const cached = e as CachedEvent;
  return (cached[PACKET] ??= `2["event",${e.json}]`);
}

/** How the hub encodes for Socket.IO subscriptions: one packet string per event, shared by every socket of the group. */
export const SOCKET_CODEC: Codec<Packets> = {
  transport: 'socketio',
  events: (events) => events.map(eventPacket),
  cursor: (seq) => [`2["cursor",{"cursor":${seq}}]`],
};

/** Engine.io's connection, as far as back-pressure is concerned. */
interface EngineConnection {
  readonly readyState: string;
  readonly writeBuffer: unknown[];
  readonly transport: { readonly name: string; readonly writable: boolean; socket?: { _socket?: { writableLength: number } } };
  write(data: string, options?: object): void;
  once(event: 'drain' | 'close', listener: () => void): void;
  removeListener(event: 'drain' | 'close', listener: () => void): void;
}

/**
 * Closes a socket's transport so that the client reconnects (it sees "transport
 * close"). engine.io's close waits for its write buffer to drain, which a
 * client that stopped reading never lets happen: the close is cut after
 * CLOSE_TIMEOUT_MS (as an SSE close is), and at once with `now` (a slow
 * consumer, whose backlog is the reason it goes).
 */
export function closeTransport(socket: Socket, now = false): void {
  const conn = socket.conn as unknown as { close(discard?: boolean): void; once(event: 'close', listener: () => void): void; readyState: string };
  if (now) {
    conn.close(true);
    return;
  }
  const timer = setTimeout(() => conn.close(true), CLOSE_TIMEOUT_MS);
  timer.unref();
  conn.once('close', () => clearTimeout(timer));
  conn.close();
}

/** Events written per replay slice before waiting for the transport to drain. */
const REPLAY_SLICE = 256;

/**
 * One socket's subscription, followed through the hub like an SSE connection.
 * A socket whose unsent data (engine.io's write buffer plus the WebSocket's
 * kernel-bound bytes) exceeds `maxBufferBytes` is disconnected (reason `slow
 * consumer`); it reconnects and resumes from its cursor.
 */
export class SocketSubscriber implements Subscriber<Packets> {
  cursor = 0;
  closed = false;

  constructor(
    readonly socket: Socket,
    readonly filter: EventFilter,
    private readonly maxBufferBytes: number,
    private readonly onSlow: (sub: SocketSubscriber) => void,
  ) {}

  private get conn(): EngineConnection {
    return this.socket.conn as unknown as EngineConnection;
  }

  /** Bytes waiting: in engine.io's buffer (counted by packet, ~1 KB each) and in the WebSocket's socket. */
  private backlog(): number {
    const conn = this.conn;
    return conn.writeBuffer.length * 1024 + (conn.transport.socket?._socket?.writableLength ?? 0);
  }

  write(packets: Packets): void {
    if (this.closed) return;
    if (this.backlog() > this.maxBufferBytes) {
      this.onSlow(this);
      return;
    }
    const conn = this.conn;
    if (conn.readyState !== 'open') return;
    for (const packet of packets) conn.write(packet);
  }

  async writeReplay(events: HubEvent[]): Promise<void> {
    for (let i = 0; i < events.length && !this.closed; i += REPLAY_SLICE) {
      const conn = this.conn;
      if (conn.readyState !== 'open') return;
      const end = Math.min(events.length, i + REPLAY_SLICE);
      for (let k = i; k < end; k++) conn.write(eventPacket(events[k]));
      if (this.backlog() > 64 * 1024) await this.drained();
    }
  }

  private drained(): Promise<void> {
    const conn = this.conn;
    return new Promise((resolve) => {
      const done = () => {
        conn.removeListener('drain', done);
        conn.removeListener('close', done);
        resolve();
      };
      conn.once('drain', done);
      conn.once('close', done);
    });
  }

  reset(cursor: number, reason: string): void {
    if (!this.closed) this.socket.emit('reset', { cursor, reason });
  }

  /** The hub cannot serve this subscription: the socket reconnects (transport close) and resumes elsewhere. */
  close(reason: string): void {
    if (this.closed) return;
    this.socket.emit('closing', { reason, reconnect: true });
    closeTransport(this.socket);
  }

  /** Its backlog passed the bound: the transport goes now (nothing more is queued for it); the client resumes from its cursor. */
  drop(): void {
    if (this.closed) return;
    closeTransport(this.socket, true);
  }
}
