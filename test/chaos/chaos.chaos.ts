// `npm run chaos`: one run of test/chaos/scenario.ts, then its findings as
// assertions (each one counts in .ci/run's "N passed, N failed").
import path from 'node:path';
import { type ChaosResult, chaosConfig, runChaos } from './scenario.js';

const config = chaosConfig(path.resolve('.'));
let result: ChaosResult | undefined;
let failure: Error | undefined;

beforeAll(async () => {
  try {
    result = await runChaos(config);
  } catch (error) {
    failure = error as Error;
  }
}, 230_000);

/** The run's result, or the reason there is none (each test then fails with it). */
function run(): ChaosResult {
  if (!result) throw failure ?? new Error('the chaos run did not finish');
  return result;
}

const examples = (items: { name: string; group: string }[], detail: (r: any) => string) =>
  items
    .slice(0, 5)
    .map((r) => `${r.name} (${r.group}): ${detail(r)}`)
    .join('\n');

describe('chaos: three replicas behind nginx, replicas/Redis/PostgreSQL hurt while 8 writers write', () => {
  it('ran at full size: >= 200 EventSource clients, >= 50 Socket.IO clients, >= 8 writers, >= 60 s of writes, every fault injected', () => {
    const r = run();
    expect(r.totals.eventsourceClients).toBeGreaterThanOrEqual(200);
    expect(r.totals.socketioClients).toBeGreaterThanOrEqual(50);
    expect(r.writers).toBeGreaterThanOrEqual(8);
    expect(r.writeSeconds).toBeGreaterThanOrEqual(60);
    expect(r.faults.map((f) => f.label)).toHaveLength(6);
    expect(r.faults.filter((f) => /harness error/.test(f.detail ?? ''))).toEqual([]);
  });

  it('the outbox is gap-free and every acknowledged (2xx) write is in it', () => {
    const r = run();
    expect(r.outboxProblems).toEqual([]);
    expect(r.missing.map((w) => `${w.op}: ${w.type} ${w.id} v${w.version}`)).toEqual([]);
    expect(r.totals.acked).toBeGreaterThan(0);
  });

  it('no client lost an event (each holds every committed event its filter selects after its start)', () => {
    const r = run();
    const bad = r.clients.filter((c) => c.lost > 0);
    if (bad.length)
      throw new Error(
        `${r.totals.lost} events lost by ${bad.length} clients, e.g.\n${examples(bad, (c) => `lost ${c.lost} of ${c.expected}${c.fatal ? `; gave up: ${c.fatal}` : ''}`)}`,
      );
  });

  it('no client received an event twice', () => {
    const r = run();
    const bad = r.clients.filter((c) => c.duplicated > 0);
    if (bad.length) throw new Error(`${r.totals.duplicated} duplicates at ${bad.length} clients, e.g.\n${examples(bad, (c) => `${c.duplicated} duplicates`)}`);
  });

  it('no client received an event out of order', () => {
    const r = run();
    const bad = r.clients.filter((c) => c.outOfOrder > 0);
    if (bad.length)
      throw new Error(`${r.totals.outOfOrder} out-of-order events at ${bad.length} clients, e.g.\n${examples(bad, (c) => `${c.outOfOrder} out of order`)}`);
  });

  it('no client received an event outside its filter or range, or with the wrong type', () => {
    const r = run();
    const bad = r.clients.filter((c) => c.unexpected > 0);
    if (bad.length)
      throw new Error(`${r.totals.unexpected} unexpected events at ${bad.length} clients, e.g.\n${examples(bad, (c) => `${c.unexpected} unexpected`)}`);
  });

  it('a client resumes from near the head, filtered or not: the stream tells it its position (DESIGN invariant 4)', () => {
    const r = run();
    // Near = what 15 s of writes produce; an unfiltered client resumes a few hundred events behind at most.
    const near = 15 * r.eventsPerSecond;
    const far = r.clients.filter((c) => c.maxResumeDistance > near && c.kind !== 'slow-reader' && !/from-0|deep-resume|reopen/.test(c.group));
    if (far.length) {
      throw new Error(
        `${far.length} EventSources or sockets resumed more than ${near} events behind the head, e.g.\n${examples(far, (c) => `resumed ${c.maxResumeDistance} events behind`)}`,
      );
    }
  });

  it('a graceful drain (SIGTERM) ends inside its grace period and fails no write (DESIGN invariant 8)', () => {
    const r = run();
    expect(r.drain).toBeDefined();
    const d = r.drain!;
    const show = (w: { op: string; status: number; detail: string }) => `${w.op} -> ${w.status} ${w.detail.replace(/\s+/g, ' ').slice(0, 80)}`;
    expect({
      exitCode: d.exitCode,
      withinGrace: (d.end ?? Infinity) - d.start < 10_000,
      // Cut: no answer, 500, or nginx's 502/504. Refused: the draining replica still took the request and answered 503.
      cutWrites: d.cutWrites.map(show),
      refusedWrites: d.refusedWrites.map(show),
    }).toEqual({ exitCode: 0, withinGrace: true, cutWrites: [], refusedWrites: [] });
  });

  it('no stream connection slot is left counted once every client is gone', () => {
    const r = run();
    // While connected, the clients were counted (else this check would read the wrong keys).
    expect(r.totals.slotsMidRun).toBeGreaterThanOrEqual(200 + 50);
    expect(r.totals.slotsLeft).toBe(0);
  });

  it('sequencing is back to normal after the faults (median commit -> seq in the last 8 s under 200 ms)', () => {
    expect(run().totals.finalSequencingMedianMs).toBeLessThan(200);
  });

  it('every client kept following on its own: none gave up, all caught up after the writes', () => {
    const r = run();
    expect({ gaveUp: r.totals.fatalClients, behindAtEnd: r.totals.clientsBehindAtEnd }).toEqual({ gaveUp: 0, behindAtEnd: 0 });
  });
});

describe('chaos: socket.io-client sockets through nginx reconnect and resume on their own', () => {
  it('every socket holds exactly what its channels and filter select from its start: nothing lost, repeated, reordered or reset', () => {
    const r = run();
    const io = r.totals.io;
    const bad = r.clients.filter((c) => c.kind === 'socketio' && (c.lost || c.duplicated || c.outOfOrder || c.unexpected || c.resets || c.fatal));
    const detail = examples(
      bad,
      (c) =>
        `lost ${c.lost}/${c.expected}, dup ${c.duplicated}, ooo ${c.outOfOrder}, unexpected ${c.unexpected}, resets ${c.resets}${c.fatal ? `, gave up: ${c.fatal}` : ''}`,
    );
    expect({
      lost: io.lost,
      duplicated: io.duplicated,
      outOfOrder: io.outOfOrder,
      unexpected: io.unexpected,
      resets: io.resets,
      gaveUp: io.fatal,
      behindAtEnd: io.behindAtEnd,
      detail,
    }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, unexpected: 0, resets: 0, gaveUp: 0, behindAtEnd: 0, detail: '' });
  });

  it('the sockets went through the faults: they reconnected (more connections than sockets) and received events', () => {
    const r = run();
    const sockets = r.clients.filter((c) => c.kind === 'socketio');
    expect(r.totals.io.connections).toBeGreaterThan(sockets.length);
    expect(sockets.filter((c) => c.received === 0 && c.expected > 0).map((c) => c.name)).toEqual([]);
  });
});
