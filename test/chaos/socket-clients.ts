// Socket.IO clients of the chaos suite: `socket.io-client`, unmodified, with
// the few lines an application writes around it (src/events/socket-protocol.ts):
// keep the last `seq` (from `event`) or `cursor` seen; on every `connect` (the
// client fires it after each of its automatic reconnections) subscribe again
// with that position as `lastEventId`; on `reset`, go on from the cursor given.
// Each one records what it received across all its connections, like the
// EventSources, so the end of the run compares it with the outbox.
import http from 'node:http';
import { io, type Socket } from 'socket.io-client';
import {
  type Channel,
  type ClientToServerEvents,
  type DisconnectNotice,
  type ServerToClientEvents,
  SOCKET_PATH,
  type SocketError,
  type SubscribeRequest,
} from '../../src/events/socket-protocol.js';
import { type ClientErrorRecord, type ClientRecord, newRecord } from './clients.js';

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface SocketRecord extends ClientRecord {
  /** The loopback address it connects from (nginx picks its replica by it). */
  readonly localAddress: string;
  /** `closing` notices (sent by the server before it closes the socket or its transport). */
  readonly closings: (DisconnectNotice & { wall: number })[];
  /** Every `disconnect`, with socket.io-client's reason (`transport close`, `ping timeout`, `io server disconnect`...). */
  readonly disconnects: { wall: number; reason: string; notice?: string }[];
  /** `connect` calls the app made itself (socket.io-client does not reconnect after these), and why. */
  readonly manualReconnects: { wall: number; why: string }[];
  /** Subscriptions acknowledged with `ok`, and the ones answered with an error or not answered. */
  acks: number;
  readonly subscribeFailures: { wall: number; message: string }[];
  /** Connections that went from long-polling to WebSocket. */
  upgrades: number;
  /** Engine.io connections opened (the handshake follows on each: `connect` or `connect_error`). */
  engineOpens: number;
  /** Engine.io connections that closed while the Socket.IO handshake was under way (neither `connect` nor `connect_error` on them). */
  readonly abandonedHandshakes: { opened: number; closed: number; reason: string }[];
}

export interface SocketSpec {
  channels: Channel[];
  /** `events` of the subscribe request (narrows the channels). */
  events?: string;
  /** socket.io-client's `transports` (undefined: its default, long-polling then upgrade to WebSocket). */
  transports?: ('polling' | 'websocket')[];
}

/** What a channel carries, in the `?events=` syntax the verification uses (CHANNEL_EVENTS; nothing in this run is a `system.*` notice). */
const CHANNEL_FILTER: Partial<Record<Channel, string>> = { agents: 'agent.*', prompts: 'prompt.*', mcp_servers: 'mcp_server.*', trust_rules: 'trust_rule.*' };

/** The types a subscription selects, for the verification (undefined: everything). */
export function socketFilter(spec: SocketSpec): string | undefined {
  if (spec.events) return spec.events;
  if (spec.channels.includes('changes')) return undefined;
  return spec.channels
    .map((c) => CHANNEL_FILTER[c])
    .filter(Boolean)
    .join(',');
}

/** Handshake refusals an app gives up on (the others: the server is busy or draining, try again). */
const FINAL_REFUSALS = new Set(['unauthorized', 'forbidden', 'bad_request', 'validation_failed']);
/** How long the app waits for a `subscribe` acknowledgement before it reconnects to start clean. */
const SUBSCRIBE_TIMEOUT_MS = 15_000;

export class IoClient {
  readonly record: SocketRecord;
  private socket?: Client;
  private readonly agent: http.Agent;
  /** The position the app keeps: last `seq` of an `event`, or the last `cursor` / `reset` cursor. */
  private last: number;
  /** The `closing` notice of the current connection, if any. */
  private notice?: DisconnectNotice;
  private closed = false;
  private readonly engines = new WeakSet<object>();

  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
    name: string,
    group: string,
    private readonly spec: SocketSpec,
    startCursor: number,
    /**
     * The client's own loopback address (127.0.0.N). nginx sends `/ws/v1` to a
     * replica by a hash of the client's address: from one address every socket
     * would land on the same replica; distinct addresses spread them as distinct
     * users are spread. Given through an http.Agent (socket.io-client's `agent`
     * option, used by both its transports).
     */
    readonly localAddress: string,
  ) {
    this.record = {
      ...newRecord(name, 'socketio', group, socketFilter(spec), startCursor),
      localAddress,
      closings: [],
      disconnects: [],
      manualReconnects: [],
      acks: 0,
      subscribeFailures: [],
      upgrades: 0,
      engineOpens: 0,
      abandonedHandshakes: [],
    };
    this.last = startCursor;
    this.agent = new http.Agent({ keepAlive: true, localAddress });
  }

  open(): void {
    const rec = this.record;
    const socket: Client = io(this.baseUrl, {
      path: SOCKET_PATH,
      auth: { token: this.apiKey },
      // One Manager (one engine connection) per client, as separate apps have.
      forceNew: true,
      reconnection: true,
      agent: this.agent as unknown as string,
      ...(this.spec.transports ? { transports: this.spec.transports } : {}),
    });
    this.socket = socket;
    // The engine.io connection under the socket: a handshake that neither connects nor is refused before it closes is abandoned.
    let handshaking: number | undefined;
    socket.io.on('open', () => {
      rec.engineOpens++;
      handshaking = Date.now();
    });
    socket.io.on('close', (reason) => {
      if (handshaking !== undefined) rec.abandonedHandshakes.push({ opened: handshaking, closed: Date.now(), reason });
      handshaking = undefined;
    });

    socket.on('connect', () => {
      handshaking = undefined;
      rec.connections++;
      const connection = rec.connections;
      this.notice = undefined;
      const engine = socket.io.engine;
      if (!this.engines.has(engine)) {
        this.engines.add(engine);
        if (engine.transport.name === 'websocket') rec.upgrades++;
        else engine.once('upgrade', () => rec.upgrades++);
      }
      const request: SubscribeRequest = { channels: this.spec.channels, lastEventId: this.last };
      if (this.spec.events) request.events = this.spec.events;
      rec.requests.push({ wall: Date.now(), from: this.last, first: rec.requests.length === 0 });
      socket
        .timeout(SUBSCRIBE_TIMEOUT_MS)
        .emitWithAck('subscribe', request)
        .then(
          (ack) => {
            if (ack.ok) rec.acks++;
            else this.subscribeFailed(connection, `${ack.error.code}: ${ack.error.detail}`);
          },
          // Rejected because the connection ended first: the next `connect` subscribes again.
          (error: Error) => this.subscribeFailed(connection, error.message),
        );
    });
    socket.on('event', (e) => {
      rec.received.push({ seq: e.seq, type: e.type, wall: Date.now(), connection: rec.connections });
      this.last = e.seq;
    });
    socket.on('cursor', (c) => {
      this.last = c.cursor;
      rec.otherFrames.push({ wall: Date.now(), event: 'cursor', id: String(c.cursor) });
    });
    socket.on('reset', (r) => {
      // An app refetches its state here (REST or discovery), then follows from the cursor given.
      this.last = r.cursor;
      rec.resets.push({ wall: Date.now(), cursor: r.cursor, reason: r.reason });
    });
    socket.on('closing', (n) => {
      this.notice = n;
      rec.closings.push({ ...n, wall: Date.now() });
    });
    socket.on('disconnect', (reason) => {
      rec.disconnects.push({ wall: Date.now(), reason, notice: this.notice?.reason });
      if (this.closed || reason !== 'io server disconnect') return; // every other reason: socket.io-client reconnects by itself
      // socket.io-client does not reconnect after the server's own disconnect; the app does, unless the
      // server said that reconnecting makes no sense (a revoked credential).
      if (this.notice?.reconnect === false) this.giveUp({ wall: Date.now(), message: `io server disconnect: ${this.notice.reason}` });
      else this.reconnectLater(`io server disconnect (${this.notice ? `closing: ${this.notice.reason}` : 'no closing notice'})`);
    });
    socket.on('connect_error', (error: Error & { data?: SocketError }) => {
      handshaking = undefined;
      const entry: ClientErrorRecord = {
        wall: Date.now(),
        message: error.data ? `handshake refused: ${error.data.code}: ${error.data.detail}` : `connect_error: ${error.message}`,
      };
      rec.errors.push(entry);
      // socket.active: socket.io-client retries by itself (a transport error). Otherwise the server refused the handshake.
      if (this.closed || socket.active) return;
      if (error.data && FINAL_REFUSALS.has(error.data.code)) this.giveUp(entry);
      else this.reconnectLater(`handshake refused: ${error.data?.code ?? error.message}`);
    });
  }

  /** The subscription of `connection` failed: start clean (disconnect, reconnect, subscribe from the position kept). */
  private subscribeFailed(connection: number, message: string): void {
    const socket = this.socket!;
    if (this.closed || connection !== this.record.connections || !socket.connected) return;
    this.record.subscribeFailures.push({ wall: Date.now(), message });
    this.record.errors.push({ wall: Date.now(), message: `subscribe failed: ${message}` });
    socket.disconnect();
    this.reconnectLater(`subscribe failed: ${message}`);
  }

  private reconnectLater(why: string): void {
    this.record.manualReconnects.push({ wall: Date.now(), why });
    setTimeout(
      () => {
        if (!this.closed && !this.socket!.connected) this.socket!.connect();
      },
      1000 + Math.random() * 1000,
    );
  }

  private giveUp(entry: ClientErrorRecord): void {
    this.record.fatal = entry;
    this.closed = true;
    this.socket?.disconnect();
  }

  /** Connected and its first subscription acknowledged. */
  get isOpen(): boolean {
    return this.socket?.connected === true && this.record.acks > 0;
  }

  close(): void {
    this.closed = true;
    this.socket?.disconnect();
    // The goodbye (Socket.IO's DISCONNECT, engine.io's close packet) leaves over the agent's connections:
    // destroying them at once would cut a long-polling client's last POST, and the server would only
    // notice the client gone at its ping timeout (up to 45 s), holding its connection slot meanwhile.
    setTimeout(() => this.agent.destroy(), 3000).unref();
  }
}
