import { EventFilter } from './event-filter.js';
import { toHubEvent, type HubEvent } from './event-window.js';
import { CLOCK_EVERY, StreamFanout } from './stream.fanout.js';
import type { Codec, Subscriber } from './subscriber.js';

/** What the test codec encodes: a batch's seqs, or a cursor told alone. */
type Payload = number[] | { cursor: number };
const codec: Codec<Payload> = { transport: 'test', events: (events) => events.map((e) => e.seq), cursor: (cursor) => ({ cursor }) };

/** Odd seqs are creations, even ones updates: a subscriber filtered on `agent.created` gets the odd ones only. */
const event = (seq: number): HubEvent =>
  toHubEvent({ seq, type: seq % 2 === 1 ? 'agent.created' : 'agent.updated', resource: 'agent', json: `{"seq":${seq}}` });

interface Recorder extends Subscriber<Payload> {
  /** Seqs received, in the order written. */
  readonly got: number[];
  /** Per write: the round it was written in and its seqs. */
  readonly writes: { round: number; seqs: number[] }[];
  closed: boolean;
}

/** A subscriber that records what it gets; each write costs `writeUs` of CPU, as a socket write would. */
function recorder(fanout: StreamFanout, filter: string | undefined, writeUs: number): Recorder {
  const got: number[] = [];
  const writes: { round: number; seqs: number[] }[] = [];
  return {
    filter: EventFilter.parse(filter, 'admin'),
    cursor: 0,
    closed: false,
    got,
    writes,
    write(payload: Payload) {
      if (!Array.isArray(payload)) return;
      for (const until = performance.now() + writeUs / 1000; performance.now() < until;);
      got.push(...payload);
      writes.push({ round: fanout.flushCount, seqs: payload });
    },
    writeReplay: async () => undefined,
    reset: () => undefined,
    close: () => undefined,
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('StreamFanout sliced rounds', () => {
  let fanout: StreamFanout;
  beforeEach(() => {
    fanout = new StreamFanout();
    fanout.start();
  });
  afterEach(() => fanout.stop());

  it('under events arriving during a sliced round: every subscriber gets each of its events once, in order, and an event joins the round under way', async () => {
    // 1,500 subscribers at ~30 µs a write: a round takes ~45 ms, many slices of 5 ms.
    const all = Array.from({ length: 750 }, () => recorder(fanout, undefined, 30));
    const created = Array.from({ length: 750 }, () => recorder(fanout, 'agent.created', 30));
    for (const sub of [...all, ...created]) fanout.join(sub, codec, false);

    const EVENTS = 120;
    /** seq → the round under way when it was published (undefined: none was). */
    const publishedDuring = new Map<number, number>();
    let seq = 0;
    while (seq < EVENTS) {
      // One or two events at a time, with the event loop turning in between (as bus messages arrive).
      const batch = range(seq + 1, Math.min(EVENTS, seq + 1 + (seq % 3 === 0 ? 1 : 0))).map(event);
      for (const e of batch) if (fanout.writing) publishedDuring.set(e.seq, fanout.flushCount);
      fanout.publish(batch);
      seq = batch[batch.length - 1].seq;
      await tick();
    }
    await until(() => [...all, ...created].every((s) => s.cursor === EVENTS) && !fanout.writing);

    for (const sub of all) expect(sub.got).toEqual(range(1, EVENTS));
    const odd = range(1, EVENTS).filter((s) => s % 2 === 1);
    for (const sub of created) expect(sub.got).toEqual(odd);

    // The rounds were sliced (the event loop turned inside them) and events were published while one was under way...
    expect(fanout.sliceCount).toBeGreaterThan(fanout.flushCount);
    expect(publishedDuring.size).toBeGreaterThan(0);
    // ...and such an event reached, in that same round, the subscribers the round had not written to yet.
    const joined = [...publishedDuring].filter(([s, round]) => all.some((sub) => sub.writes.some((w) => w.round === round && w.seqs.includes(s))));
    expect(joined.length).toBeGreaterThan(0);
    // Coalescing: far fewer writes than events per subscriber.
    const writes = all.reduce((n, sub) => n + sub.writes.length, 0) / all.length;
    expect(writes).toBeLessThan(EVENTS / 2);
  });

  it('a subscriber joining during a round gets only what follows its cursor; one leaving gets nothing more', async () => {
    const subs = Array.from({ length: 1000 }, () => recorder(fanout, undefined, 30));
    for (const sub of subs) fanout.join(sub, codec, false);
    fanout.publish([event(1)]);
    expect(fanout.writing).toBe(true); // the first slice ran synchronously; the rest follow
    const leaver = subs[subs.length - 1]; // last in the pass: not written to yet
    fanout.leave(leaver);
    leaver.closed = true;
    const late = recorder(fanout, undefined, 0);
    late.cursor = 1; // as the hand-over from replay leaves it: caught up to the head
    fanout.join(late, codec, false);
    fanout.publish([event(2)]); // joins the round under way
    await until(() => !fanout.writing && subs[0].cursor === 2);
    fanout.publish([event(3)]);
    await until(() => !fanout.writing && late.cursor === 3);

    expect(leaver.got).toEqual([]);
    expect(late.got).toEqual([2, 3]);
    for (const sub of subs.slice(0, -1)) expect(sub.got).toEqual([1, 2, 3]);
    // The subscriber written first got 1 alone, and 2 in the next round; the last ones got 1 and 2 in one write.
    expect(subs[0].writes[0].seqs).toEqual([1]);
    expect(subs[subs.length - 2].writes[0].seqs).toEqual([1, 2]);
  });

  it('writes an event that finds it idle in one synchronous pass when the subscribers are few', () => {
    // Fewer than CLOCK_EVERY: the clock is not even read, so a descheduled test process cannot make it yield.
    const subs = Array.from({ length: CLOCK_EVERY - 1 }, () => recorder(fanout, undefined, 0));
    for (const sub of subs) fanout.join(sub, codec, false);
    fanout.publish([event(1), event(2)]);
    expect(fanout.writing).toBe(false);
    for (const sub of subs) expect(sub.writes.map((w) => w.seqs)).toEqual([[1, 2]]);
  });
});
