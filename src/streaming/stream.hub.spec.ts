import type { BusListener, EventBus } from '../bus/event-bus.js';
import type { WireEvent } from '../bus/wire-event.js';
import type { AppConfig } from '../config/app-config.js';
import type { OutboxRepository } from '../outbox/outbox.repository.js';
import { EventFilter } from './event-filter.js';
import { StreamHub, type Subscriber } from './stream.hub.js';

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

/** A subscriber whose writes are the seqs of each batch; `busyMs` makes its first write slow. */
function subscriber(busyMs = 0): Subscriber<number[]> & { writes: number[][] } {
  const writes: number[][] = [];
  return {
    filter: EventFilter.parse(undefined, 'admin'),
    cursor: 0,
    closed: false,
    writes,
    write(seqs: number[]) {
      if (writes.length === 0 && busyMs > 0) for (const until = performance.now() + busyMs; performance.now() < until; );
      writes.push(seqs);
    },
    writeReplay: async () => undefined,
    reset: () => undefined,
    close: () => undefined,
  };
}

const encode = (events: { seq: number }[]) => events.map((e) => e.seq);

describe('StreamHub write coalescing', () => {
  it('writes an event that finds it idle at once, from the bus callback', async () => {
    const { hub, bus } = await startHub();
    const sub = subscriber();
    await hub.follow(sub, 'test', encode, undefined);
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
    await hub.follow(slow, 'test', encode, undefined);
    await hub.follow(other, 'test', encode, undefined);
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
    await hub.follow(first, 'test', encode, undefined);
    bus().onEvents([wire(1)]);
    bus().onEvents([wire(2)]); // queued for the next flush
    const late = subscriber();
    await hub.follow(late, 'test', encode, undefined); // follows from head 2
    await new Promise((r) => setTimeout(r, 100));
    expect(first.writes).toEqual([[1], [2]]);
    expect(late.writes).toEqual([]);
    bus().onEvents([wire(3)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(late.writes).toEqual([[3]]);
    hub.beforeApplicationShutdown();
  });
});
