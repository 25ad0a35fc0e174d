import type { BusListener, EventBus } from '../bus/event-bus.js';
import type { WireEvent } from '../bus/wire-event.js';
import type { AppConfig } from '../config/app-config.js';
import type { OutboxRepository } from '../outbox/outbox.repository.js';
import { EventFilter } from './event-filter.js';
import { StreamHub } from './stream.hub.js';
import type { Codec, Subscriber } from './subscriber.js';

const wire = (seq: number): WireEvent => ({ seq, type: 'agent.updated', resource: 'agent', json: `{"seq":${seq}}` });

async function startHub() {
  let listener!: BusListener;
  const bus = { subscribe: (l: BusListener) => (listener = l) } as unknown as EventBus;
  const outbox = {
    head: async () => ({ lastSeq: 0, prunedThrough: 0 }),
    readLatest: async () => [],
    readRange: async () => [],
  } as unknown as OutboxRepository;
  const config = { stream: { windowSize: 100, headPollMs: 60_000, replayPageSize: 100 } } as AppConfig;
  const hub = new StreamHub(bus, outbox, config);
  await hub.onApplicationBootstrap();
  return { hub, bus: () => listener };
}

/** What the test codec encodes: a batch's seqs, or a cursor told alone. */
type Payload = number[] | { cursor: number };

/** A subscriber whose writes are the seqs of each batch (cursors apart); `busyMs` makes its first write slow. */
function subscriber(busyMs = 0, events?: string): Subscriber<Payload> & { writes: number[][]; cursors: number[] } {
  const writes: number[][] = [];
  const cursors: number[] = [];
  return {
    filter: EventFilter.parse(events, 'admin'),
    cursor: 0,
    closed: false,
    writes,
    cursors,
    write(payload: Payload) {
      if (!Array.isArray(payload)) {
        cursors.push(payload.cursor);
        return;
      }
      if (writes.length === 0 && busyMs > 0) for (const until = performance.now() + busyMs; performance.now() < until;);
      writes.push(payload);
    },
    writeReplay: async () => undefined,
    reset: () => undefined,
    close: () => undefined,
  };
}

const encode: Codec<Payload> = { transport: 'test', events: (events) => events.map((e) => e.seq), cursor: (cursor) => ({ cursor }) };

describe('StreamHub write coalescing', () => {
  it('writes an event that finds it idle at once, from the bus callback', async () => {
    const { hub, bus } = await startHub();
    const sub = subscriber();
    await hub.follow(sub, encode, undefined);
    bus().onEvents([wire(1)]);
    expect(sub.writes).toEqual([[1]]);
    bus().onEvents([wire(2), wire(3)]);
    expect(sub.writes).toEqual([[1], [2, 3]]);
    hub.beforeApplicationShutdown();
  });

  it('gathers events that arrive right after a slow flush into one write per subscriber', async () => {
    const { hub, bus } = await startHub();
    const slow = subscriber(8);
    const other = subscriber();
    await hub.follow(slow, encode, undefined);
    await hub.follow(other, encode, undefined);
    bus().onEvents([wire(1)]); // a flush that takes ~8 ms
    bus().onEvents([wire(2)]);
    bus().onEvents([wire(3)]);
    expect(other.writes).toEqual([[1]]); // 2 and 3 wait for the next flush
    expect(hub.head).toBe(3); // but they are in the sequence (and the window) already
    await new Promise((r) => setTimeout(r, 100));
    expect(other.writes).toEqual([[1], [2, 3]]);
    expect(slow.writes).toEqual([[1], [2, 3]]);
    expect(hub.stats.flushes).toBe(2);
    hub.beforeApplicationShutdown();
  });

  it('does not write again to a subscriber that joined after the events it would get', async () => {
    const { hub, bus } = await startHub();
    const first = subscriber(8);
    await hub.follow(first, encode, undefined);
    bus().onEvents([wire(1)]);
    bus().onEvents([wire(2)]); // queued for the next flush
    const late = subscriber();
    await hub.follow(late, encode, undefined); // follows from head 2
    await new Promise((r) => setTimeout(r, 100));
    expect(first.writes).toEqual([[1], [2]]);
    expect(late.writes).toEqual([]);
    bus().onEvents([wire(3)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(late.writes).toEqual([[3]]);
    hub.beforeApplicationShutdown();
  });
});

describe('StreamHub cursor', () => {
  it('tells a subscriber that joins without a cursor where it is', async () => {
    const { hub, bus } = await startHub();
    bus().onEvents([wire(1), wire(2)]);
    const sub = subscriber();
    await hub.follow(sub, encode, undefined);
    expect(sub.cursor).toBe(2);
    expect(sub.cursors).toEqual([2]);
    hub.beforeApplicationShutdown();
  });

  it('advances a filtered subscriber past events it does not get, coalesced', async () => {
    const { hub, bus } = await startHub();
    const sub = subscriber(0, 'prompt.*');
    await hub.follow(sub, encode, undefined);
    expect(sub.cursors).toEqual([0]);
    for (let seq = 1; seq <= 5; seq++) bus().onEvents([wire(seq)]); // agent.updated: filtered out
    await new Promise((r) => setTimeout(r, 50)); // coalesced flushes
    expect(sub.writes).toEqual([]);
    expect(sub.cursor).toBe(5);
    await new Promise((r) => setTimeout(r, 1200));
    expect(sub.cursors).toEqual([0, 5]); // one frame for five filtered-out events
    await new Promise((r) => setTimeout(r, 1100));
    expect(sub.cursors).toEqual([0, 5]); // nothing new: nothing told
    hub.beforeApplicationShutdown();
  });

  it('does not tell the cursor again when the last event written carries it', async () => {
    const { hub, bus } = await startHub();
    const sub = subscriber();
    await hub.follow(sub, encode, undefined);
    bus().onEvents([wire(1)]);
    await new Promise((r) => setTimeout(r, 1200));
    expect(sub.writes).toEqual([[1]]);
    expect(sub.cursors).toEqual([0]);
    hub.beforeApplicationShutdown();
  });
});

describe('StreamHub back-fill', () => {
  it('keeps the batch it was processing when a back-fill read fails, and delivers it once the outbox answers', async () => {
    let listener!: BusListener;
    const bus = { subscribe: (l: BusListener) => (listener = l) } as unknown as EventBus;
    const committed = [1, 2, 3].map((seq) => ({
      seq,
      type: 'agent.updated',
      resource: 'agent',
      id: `a${seq}`,
      action: 'updated',
      ts: new Date(0).toISOString(),
    }));
    let failures = 1;
    const outbox = {
      head: async () => ({ lastSeq: 0, prunedThrough: 0 }),
      readLatest: async () => [],
      readRange: async (after: number, upTo: number) => {
        if (failures-- > 0) throw new Error('connection terminated');
        return committed.filter((e) => e.seq > after && e.seq <= upTo);
      },
    } as unknown as OutboxRepository;
    const config = { stream: { windowSize: 100, headPollMs: 60_000, replayPageSize: 100 } } as AppConfig;
    const hub = new StreamHub(bus, outbox, config);
    await hub.onApplicationBootstrap();
    const sub = subscriber();
    await hub.follow(sub, encode, undefined);
    listener.onEvents([wire(3)]); // 1 and 2 were lost on the bus: back-fill, which fails once
    await new Promise((r) => setTimeout(r, 600));
    expect(sub.writes.flat()).toEqual([1, 2, 3]);
    expect(hub.head).toBe(3);
    hub.beforeApplicationShutdown();
  });
});
