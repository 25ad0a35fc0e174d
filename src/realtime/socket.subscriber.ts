import type { Socket } from 'socket.io';
import { drainedOrClosed } from '../common/drained.js';
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
 *
 * For a WebSocket transport a batch also goes as WebSocket frames built once
 * (per event, cached on it) and written for every socket in one buffer: one
 * socket write per batch and socket, as SSE does, where engine.io would make
 * one write per event. engine.io's `wsPreEncodedFrame` option (what
 * socket.io's broadcast uses for one pre-framed packet) carries it.
 */
export interface Packets {
  readonly packets: readonly string[];
  /** The events the packets are of (none for a cursor). */
  readonly events: readonly HubEvent[];
  /** All packets as WebSocket frames, in one buffer; made on the first WebSocket write. */
  frames?: Buffer;
}

const PACKET = Symbol('socket.io packet');
const FRAME = Symbol('websocket frame');
type CachedEvent = HubEvent & { [PACKET]?: string; [FRAME]?: Buffer };

function eventPacket(e: HubEvent): string {
  const cached = e as CachedEvent;
  return (cached[PACKET] ??= `2["event",${e.json}]`);
}

/**
 * A WebSocket text frame (RFC 6455 §5.2; server to client, so unmasked), final,
 * carrying engine.io's message packet `4<packet>`.
 */
export function webSocketFrame(packet: string): Buffer {
  const size = Buffer.byteLength(packet) + 1;
  const head = size < 126 ? 2 : size < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + size);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (size < 126) frame[1] = size;
  else if (size < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(size, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(size), 2);
  }
  frame[head] = 0x34; // '4': engine.io message
  frame.write(packet, head + 1);
  return frame;
}

function eventFrame(e: HubEvent): Buffer {
  const cached = e as CachedEvent;
  return (cached[FRAME] ??= webSocketFrame(eventPacket(e)));
}

function framesOf(payload: Packets): Buffer {
  if (payload.events.length === payload.packets.length) {
    return payload.events.length === 1 ? eventFrame(payload.events[0]) : Buffer.concat(payload.events.map(eventFrame));
  }
  return Buffer.concat(payload.packets.map(webSocketFrame));
}

/** How the hub encodes for Socket.IO subscriptions: one payload per batch, shared by every socket of the group. */
export const SOCKET_CODEC: Codec<Packets> = {
  transport: 'socketio',
  events: (events) => ({ packets: events.map(eventPacket), events }),
  cursor: (seq) => ({ packets: [`2["cursor",{"cursor":${seq}}]`], events: [] }),
};

/** Engine.io's connection, as far as back-pressure is concerned. */
interface EngineConnection {
  readonly readyState: string;
  readonly writeBuffer: { options?: { wsPreEncodedFrame?: Buffer[] } }[];
  readonly transport: {
    readonly name: string;
    readonly writable: boolean;
    readonly perMessageDeflate?: unknown;
    socket?: { _socket?: { writableLength: number }; _sender?: { sendFrame?: unknown } };
  };
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

  /** Bytes waiting: in engine.io's buffer (pre-framed batches by size, other packets ~1 KB each) and in the WebSocket's socket. */
  private backlog(): number {
    const conn = this.conn;
    let queued = 0;
    for (const packet of conn.writeBuffer) queued += packet.options?.wsPreEncodedFrame?.[0]?.length ?? 1024;
    return queued + (conn.transport.socket?._socket?.writableLength ?? 0);
  }

  write(payload: Packets): void {
    if (this.closed) return;
    if (this.backlog() > this.maxBufferBytes) {
      this.onSlow(this);
      return;
    }
    const conn = this.conn;
    if (conn.readyState !== 'open') return;
    const transport = conn.transport;
    // engine.io writes a pre-framed packet as it is exactly when this holds (WebSocketTransport._canSendPreEncodedFrame);
    // otherwise (long-polling, or compression on) it would send the first packet only, so each goes on its own.
    if (transport.name === 'websocket' && !transport.perMessageDeflate && typeof transport.socket?._sender?.sendFrame === 'function') {
      payload.frames ??= framesOf(payload);
      conn.write(payload.packets[0], { wsPreEncodedFrame: [payload.frames] });
      return;
    }
    for (const packet of payload.packets) conn.write(packet);
  }

  async writeReplay(events: HubEvent[]): Promise<void> {
    for (let i = 0; i < events.length && !this.closed; i += REPLAY_SLICE) {
      const conn = this.conn;
      if (conn.readyState !== 'open') return;
      const end = Math.min(events.length, i + REPLAY_SLICE);
      for (let k = i; k < end; k++) conn.write(eventPacket(events[k]));
      if (this.backlog() > 64 * 1024) await drainedOrClosed(this.conn);
    }
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
