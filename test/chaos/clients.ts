// Stream clients of the chaos suite. Each one records what it received (seq,
// type, wall-clock time) across all its connections, so the end of the run
// can compare it with the outbox.
import { EventSource } from 'eventsource';
import { SlowReader } from '../support/slow-reader.js';

/** The event catalog (DESIGN.md): an EventSource only dispatches named events it has a listener for. */
export const EVENT_TYPES = [
  'agent.created',
  'agent.updated',
  'agent.deleted',
  'prompt.created',
  'prompt.activated',
  'prompt.deleted',
  'mcp_server.created',
  'mcp_server.updated',
  'mcp_server.deleted',
  'mcp_server.health_changed',
  'mcp_server.circuit_changed',
  'trust_rule.created',
  'trust_rule.updated',
  'trust_rule.deleted',
] as const;

/** Same semantics as the server's `?events=`: exact names and `resource.*`; empty = everything. */
export function filterMatcher(spec: string | undefined): (type: string) => boolean {
  const parts = (spec ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0 || parts.includes('*')) return () => true;
  const exact = new Set(parts.filter((p) => !p.endsWith('.*')));
  const prefixes = parts.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -1));
  return (type) => exact.has(type) || prefixes.some((p) => type.startsWith(p));
}

export interface Received {
  seq: number;
  type: string;
  /** Date.now() when the client's code saw it. */
  wall: number;
  /** Which connection of this client delivered it (1-based). */
  connection: number;
}

export interface ClientErrorRecord {
  wall: number;
  code?: number;
  message: string;
}

export interface ClientRecord {
  readonly name: string;
  readonly kind: 'eventsource' | 'slow-reader' | 'socketio';
  /** What the client is, for the report: unfiltered, agent.*, slow-stopped ... */
  readonly group: string;
  /** The `?events=` filter (undefined: everything); for a socket, the types its channels and filter select, in the same syntax. */
  readonly events?: string;
  /** The position it first joined at (sent as `lastEventId`): it must receive exactly what follows. */
  readonly startCursor: number;
  readonly received: Received[];
  readonly resets: { wall: number; cursor: number; reason?: string }[];
  /** Other frames with data (unnamed `message`, `cursor`...): wall time and id. */
  readonly otherFrames: { wall: number; event: string; id?: string }[];
  connections: number;
  /**
   * Every stream request the client made: when, and the position it resumed
   * from (the Last-Event-ID header the package sent, else the URL's lastEventId;
   * for a socket, the `lastEventId` of each `subscribe`).
   * `first`: the first request of an EventSource object or socket (its start, not a resume).
   */
  readonly requests: { wall: number; from: number; first: boolean }[];
  readonly errors: ClientErrorRecord[];
  /** The EventSource gave up (readyState CLOSED after a non-200 answer or a wrong content type). */
  fatal?: ClientErrorRecord;
}

export function newRecord(name: string, kind: ClientRecord['kind'], group: string, events: string | undefined, startCursor: number): ClientRecord {
  return { name, kind, group, events, startCursor, received: [], resets: [], otherFrames: [], connections: 0, requests: [], errors: [] };
}

function streamPath(events: string | undefined, lastEventId?: number): string {
  const query = new URLSearchParams();
  if (events) query.set('events', events);
  if (lastEventId !== undefined) query.set('lastEventId', String(lastEventId));
  const q = query.toString().replace(/%2C/gi, ',').replace(/%2A/gi, '*');
  return `/api/v1/stream/changes${q ? `?${q}` : ''}`;
}

/**
 * The WHATWG `eventsource` package, unmodified: it reconnects by itself with
 * `Last-Event-ID` after the stream ends or the network fails, and gives up on
 * a non-200 answer (as browsers do). The only option given is a `fetch` that
 * adds the API key. `reopen()` is what an application does after a reload:
 * a new EventSource with `?lastEventId=` of the last event it saw.
 */
export class EsClient {
  readonly record: ClientRecord;
  private es?: EventSource;
  private lastSeen?: string;

  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
    name: string,
    group: string,
    events: string | undefined,
    startCursor: number,
  ) {
    this.record = newRecord(name, 'eventsource', group, events, startCursor);
  }

  open(lastEventId = this.lastSeen !== undefined ? Number(this.lastSeen) : this.record.startCursor): void {
    const rec = this.record;
    const key = this.apiKey;
    let first = true;
    const es = new EventSource(`${this.baseUrl}${streamPath(rec.events, lastEventId)}`, {
      fetch: (input, init) => {
        const headers = (init?.headers ?? {}) as Record<string, string>;
        const resumeFrom = headers['Last-Event-ID'] ?? headers['last-event-id'];
        rec.requests.push({ wall: Date.now(), from: resumeFrom !== undefined ? Number(resumeFrom) : lastEventId, first });
        first = false;
        return fetch(input, { ...init, headers: { ...headers, authorization: `Bearer ${key}` } });
      },
    });
    this.es = es;
    es.addEventListener('open', () => rec.connections++);
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (e: MessageEvent) => {
        this.lastSeen = e.lastEventId;
        rec.received.push({ seq: Number(e.lastEventId), type, wall: Date.now(), connection: rec.connections });
      });
    }
    es.addEventListener('reset', (e: MessageEvent) => {
      this.lastSeen = e.lastEventId;
      let reason: string | undefined;
      try {
        reason = JSON.parse(e.data).reason;
      } catch {
        // not JSON
      }
      rec.resets.push({ wall: Date.now(), cursor: Number(e.lastEventId), reason });
    });
    for (const other of ['message', 'cursor']) {
      es.addEventListener(other, (e: MessageEvent) => {
        if (e.lastEventId) this.lastSeen = e.lastEventId;
        rec.otherFrames.push({ wall: Date.now(), event: other, id: e.lastEventId || undefined });
      });
    }
    es.addEventListener('error', (e: Event) => {
      const err = e as Event & { code?: number; message?: string };
      const entry = { wall: Date.now(), code: err.code, message: err.message ?? 'error' };
      rec.errors.push(entry);
      if (es.readyState === es.CLOSED && es === this.es) rec.fatal = entry;
    });
  }

  get readyState(): number {
    return this.es?.readyState ?? 2;
  }

  get isOpen(): boolean {
    return this.es?.readyState === 1;
  }

  close(): void {
    this.es?.close();
  }
}

export type SlowBehaviour = 'stop-then-slow' | 'slow' | 'history-stopped' | 'stopped-long';

/** A raw-socket reader with its own resume logic (see test/support/slow-reader.ts). */
export class SlowClient {
  readonly record: ClientRecord;
  reader!: SlowReader;

  constructor(
    private readonly targets: { host: string; port: number }[],
    private readonly apiKey: string,
    name: string,
    readonly behaviour: SlowBehaviour,
    events: string | undefined,
    startCursor: number,
    via: string,
  ) {
    this.record = newRecord(name, 'slow-reader', `slow:${behaviour}(${via})`, events, startCursor);
  }

  /** The first connection carries the start position in the query (like the EventSources); later ones send Last-Event-ID. */
  start(): void {
    this.reader = SlowReader.start({
      targets: this.targets,
      path: streamPath(this.record.events, this.record.startCursor),
      headers: { authorization: `Bearer ${this.apiKey}` },
      readBufferBytes: 4096,
    });
  }

  /** Copies what the reader parsed since the last call into the record (called from a timer). */
  sync(): void {
    const r = this.reader;
    const rec = this.record;
    rec.connections = r.statuses.filter((s) => s === 200).length;
    // Taken out of the reader as they are copied: replays of the history are tens of MB.
    const frames = r.frames.splice(0);
    r.events.length = 0;
    for (const f of frames) {
      const wall = Date.now() - Math.max(0, Math.round(performance.now() - f.at));
      if (f.id !== undefined && f.event.includes('.')) rec.received.push({ seq: Number(f.id), type: f.event, wall, connection: rec.connections });
      else if (f.event === 'reset') {
        let reason: string | undefined;
        try {
          reason = JSON.parse(f.data).reason;
        } catch {
          // not JSON
        }
        rec.resets.push({ wall, cursor: Number(f.id), reason });
      } else rec.otherFrames.push({ wall, event: f.event, id: f.id });
    }
  }

  close(): void {
    this.reader.close();
    this.sync();
  }
}
