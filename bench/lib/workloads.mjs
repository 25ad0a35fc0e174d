// The workloads, each run the same way against every system. CPU and RSS are
// read from /proc for the system's measured (subscriber-serving) process
// only; delivered events are counted by the load client.
import { now, percentile, rssBytes, sleep, sumCpu, sumCpuSplit, sumRss, waitUntil } from './proc.mjs';

export const SIZES = {
  full: {
    W1: { subscribers: 2000, events: 500, rate: 200, sampleEvery: 20, fixedCostEvents: 200 },
    W2: { subscribers: 10_000, events: 200, rate: 50, sampleEvery: 100 },
    W3: { connections: 20_000, midpoint: 10_000 },
    W4: { subscribers: 1000, events: 200, rate: 20, sampleEvery: 5 },
    W5: { behind: 10_000 },
    W6: { seconds: 15, concurrency: 16 },
    W7: { subscribers: 10_000, events: 200, rate: 50, sampleEvery: 100 },
    W8: { clients: 2000, behind: 5000 },
    W9: { subscribers: 1000, events: 200, rate: 50, sampleEvery: 10 },
    W10: { connections: 10_000 },
  },
  quick: {
    W1: { subscribers: 500, events: 200, rate: 200, sampleEvery: 10, fixedCostEvents: 100 },
    W2: { subscribers: 2000, events: 100, rate: 50, sampleEvery: 50 },
    W3: { connections: 3000, midpoint: 1500 },
    W4: { subscribers: 300, events: 60, rate: 20, sampleEvery: 3 },
    W5: { behind: 5000 },
    W6: { seconds: 4, concurrency: 16 },
    W7: { subscribers: 2000, events: 100, rate: 50, sampleEvery: 20 },
    W8: { clients: 300, behind: 2000 },
    W9: { subscribers: 300, events: 100, rate: 50, sampleEvery: 10 },
    W10: { connections: 2000 },
  },
};

/** Calls fn(i, t) `count` times at `rate` per second, on an absolute schedule. */
async function paced(count, rate, fn) {
  const period = 1000 / rate;
  const t0 = now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * period - now();
    if (wait > 0.5) await sleep(wait);
    fn(i, now());
  }
}

function stats(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/** Seconds W3 waits after opening before reading RSS. */
const SETTLE_S = 8;

const channelOf = (w) => `${w.toLowerCase()}-${Date.now().toString(36)}`;

/**
 * W1/W2: `subscribers` SSE clients of one server, `events` published at `rate`.
 * CPU µs per delivered event over the publish window (from the first publish
 * until every frame arrived), latency from the sampled connections.
 */
/**
 * Opens `count` connections after one warm-up connection (nchan in Redis mode
 * sets a new channel up on its first subscriber; that is not what is measured).
 */
async function openWarm(pool, targets, count, options) {
  const warm = await pool.open(targets, 1, options);
  await sleep(300);
  const rest = await pool.open(targets, count - 1, options);
  const results = { ...rest.results };
  for (const [k, v] of Object.entries(warm.results)) results[k] = (results[k] ?? 0) + v;
  return { opened: warm.opened + rest.opened, results, ms: rest.ms };
}

/** CPU of the measured process per published event with no subscriber at all: what an event costs before fan-out. */
async function fixedCost(sys, channel, events, rate) {
  const pids = sys.measuredPids();
  await sleep(300);
  const cpu0 = sumCpu(pids);
  const pub = sys.publisher(channel);
  await paced(events, rate, (i, t) => pub.send(i, t));
  await pub.flush();
  await sleep(500);
  return (sumCpu(pids) - cpu0) / events;
}

export async function fanout(name, sys, pool, { subscribers, events, rate, sampleEvery, fixedCostEvents = 0 }, log, { client = 'raw' } = {}) {
  const channel = channelOf(name);
  const fixed = fixedCostEvents > 0 ? await fixedCost(sys, `${channel}-idle`, fixedCostEvents, rate) : undefined;
  const targets = client === 'socketio' ? await sys.socketTargets(channel) : sys.targets('main', channel);
  const opened = await openWarm(pool, targets, subscribers, { sampleEvery, client, ...(client === 'socketio' ? { concurrency: 32, timeoutMs: 120_000 } : {}) });
  log(`  ${sys.name}: ${opened.opened}/${subscribers} subscribers in ${(opened.ms / 1000).toFixed(1)} s ${JSON.stringify(opened.results)}`);
  await sleep(1000);
  await pool.samples(); // drop anything from before the window
  const pids = sys.measuredPids();
  const headBefore = sys.head ? await sys.head() : 0;
  const before = await pool.stats();
  const base = before.frames;
  const split0 = sumCpuSplit(pids);
  const cpu0 = split0.user + split0.sys;
  const clientCpu0 = sumCpu(pool.pids());
  const t0 = now();
  const pub = sys.publisher(channel);
  await paced(events, rate, (i, t) => pub.send(i, t));
  const publishMs = now() - t0;
  const expected = opened.opened * events;
  const wait = await pool.waitFrames(base, expected, { timeoutMs: 90_000, stallMs: 8000 });
  const split1 = sumCpuSplit(pids);
  const cpu1 = split1.user + split1.sys;
  const clientCpu1 = sumCpu(pool.pids());
  const elapsedMs = wait.at - t0;
  const failures = await pub.flush();
  const samples = await pool.samples();
  const publish = stats(samples.filter((s) => s.bt > 0).map((s) => s.recv - s.bt));
  let commit;
  if (sys.commitTimes) {
    const times = await sys.commitTimes(headBefore, headBefore + events + 10);
    commit = stats(samples.map((s) => s.recv - (times.get(s.id)?.ms ?? NaN)));
  }
  const s = await pool.stats();
  await pool.closeAll();
  return {
    subscribers: opened.opened,
    events,
    expected,
    delivered: wait.frames,
    complete: wait.done,
    publishFailures: typeof failures === 'number' ? failures : 0,
    publishMs,
    elapsedMs,
    cpuMs: (cpu1 - cpu0) / 1000,
    cpuPerEvent: (cpu1 - cpu0) / Math.max(1, wait.frames),
    userPerEvent: (split1.user - split0.user) / Math.max(1, wait.frames),
    sysPerEvent: (split1.sys - split0.sys) / Math.max(1, wait.frames),
    cpuCores: (cpu1 - cpu0) / 1000 / elapsedMs,
    clientCpuCores: (clientCpu1 - clientCpu0) / 1000 / elapsedMs,
    bytesPerFrame: s.frames > 0 ? s.bytes / s.frames : NaN,
    framesPerRead: (s.frames - before.frames) / Math.max(1, s.reads - before.reads),
    fixedCostPerEvent: fixed,
    publish,
    commit,
  };
}

/** W3: `connections` idle SSE clients on one fresh server; RSS per connection, then one event must reach all. */
/** Reads RSS every 0.5 s for SETTLE_S seconds (incremental GC of the handshakes' garbage, timers); the last reading counts. */
async function settledRss(pids) {
  let rss = sumRss(pids);
  const readings = [];
  for (let i = 0; i < SETTLE_S * 2; i++) {
    await sleep(500);
    rss = sumRss(pids);
    readings.push(Math.round(rss / 2 ** 20));
  }
  return { rss, readings };
}

export async function idle(name, sys, pool, { connections, midpoint }, log, { client = 'raw' } = {}) {
  const channel = channelOf(name);
  const pids = sys.measuredPids();
  const targets = client === 'socketio' ? await sys.socketTargets(channel) : sys.targets('main', channel);
  const warm = await pool.open(targets, 1, { client }); // sets the channel up (nchan); counted as held, not in the RSS delta
  await sleep(1500);
  const rss0 = sumRss(pids);
  const heap0 = client === 'socketio' && sys.heap ? await sys.heap() : undefined;
  // First `midpoint` connections (RSS per connection at that count, settled), then the rest.
  let mid;
  let first = { opened: 0, ms: 0, results: {} };
  if (midpoint && midpoint < connections) {
    first = await pool.open(targets, midpoint - warm.opened, { concurrency: 64, timeoutMs: 120_000, client });
    const settled = await settledRss(pids);
    mid = { connections: first.opened + warm.opened, rssMB: settled.rss / 2 ** 20, rssPerConnKB: (settled.rss - rss0) / Math.max(1, first.opened) / 1024 };
    log(`  ${sys.name}: ${mid.connections} connections: ${mid.rssPerConnKB.toFixed(2)} KB each`);
  }
  const rest = await pool.open(targets, connections - warm.opened - first.opened, { concurrency: 64, timeoutMs: 120_000, client });
  const opened = { opened: first.opened + rest.opened, ms: first.ms + rest.ms, results: { ...rest.results } };
  for (const [k, v] of Object.entries(first.results)) opened.results[k] = (opened.results[k] ?? 0) + v;
  log(`  ${sys.name}: ${opened.opened + warm.opened}/${connections} connections in ${(opened.ms / 1000).toFixed(1)} s ${JSON.stringify(opened.results)}`);
  const { rss: rss1, readings: settle } = await settledRss(pids);
  const heap1 = heap0 ? await sys.heap() : undefined;
  const held = (await pool.stats()).open;
  log(
    `  ${sys.name}: RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MB, ${((rss1 - rss0) / Math.max(1, opened.opened) / 1024).toFixed(2)} KB per connection`,
  );
  const base = (await pool.stats()).frames;
  const pub = sys.publisher(channel);
  pub.send(0, now());
  const wait = await pool.waitFrames(base, held, { timeoutMs: 30_000, stallMs: 8000 });
  await pub.flush();
  const after = await pool.stats();
  await pool.closeAll();
  return {
    connections,
    opened: opened.opened + warm.opened,
    openMs: opened.ms,
    openResults: opened.results,
    held,
    stillOpenAfterEvent: after.open,
    reachedByEvent: wait.frames,
    rssBeforeMB: rss0 / 2 ** 20,
    rssAfterMB: rss1 / 2 ** 20,
    rssPerConnKB: (rss1 - rss0) / Math.max(1, opened.opened) / 1024,
    rssSettleMB: settle,
    heapBefore: heap0,
    heapAfter: heap1,
    mid,
    pids: pids.map((p) => ({ pid: p, rssMB: rssBytes(p) / 2 ** 20 })),
  };
}

/** W4: `subscribers` spread over 3 replicas (nodes), `events` mutations at `rate` on one; end-to-end latency. */
export async function cluster(name, sys, pool, { subscribers, events, rate, sampleEvery }, log) {
  const channel = channelOf(name);
  await sys.setupCluster();
  try {
    const targets = sys.targets('cluster', channel);
    const opened = await openWarm(pool, targets, subscribers, { sampleEvery });
    log(`  ${sys.name}: ${opened.opened}/${subscribers} subscribers over ${targets.length} node(s) ${JSON.stringify(opened.results)}`);
    const rest = sys.restPublisher ? await sys.restPublisher() : undefined;
    await sleep(1000);
    await pool.samples();
    const headBefore = sys.head ? await sys.head() : 0;
    const base = (await pool.stats()).frames;
    const pub = rest ?? sys.publisher(channel);
    const client0 = sumCpuSplit(pool.pids());
    const t0 = now();
    await paced(events, rate, (i, t) => pub.send(i, t));
    const expected = opened.opened * events;
    const wait = await pool.waitFrames(base, expected, { timeoutMs: 30_000, stallMs: 8000 });
    const client1 = sumCpuSplit(pool.pids());
    const failures = await pub.flush();
    const samples = await pool.samples();
    let publish;
    let commit;
    let breakdown;
    if (rest) {
      const times = await sys.commitTimes(headBefore, headBefore + events + 10);
      commit = stats(samples.map((s) => s.recv - (times.get(s.id)?.ms ?? NaN)));
      publish = stats(samples.map((s) => s.recv - (rest.sent.get(times.get(s.id)?.key) ?? NaN)));
      // Where the time goes: commit → numbered by the sequencer → delivered.
      const seqd = [...times.values()].map((t) => t.sequenced - t.ms);
      breakdown = {
        exactCommitTimes: [...times.values()].filter((t) => t.exact).length,
        commitByNode: targets.map((_, n) => stats(samples.filter((s) => s.target === n).map((s) => s.recv - (times.get(s.id)?.ms ?? NaN)))),
        commitToSequenced: stats(seqd),
        sequencedToDelivery: stats(samples.map((s) => s.recv - (times.get(s.id)?.sequenced ?? NaN))),
      };
    } else {
      publish = stats(samples.filter((s) => s.bt > 0).map((s) => s.recv - s.bt));
    }
    await pool.closeAll();
    return {
      nodes: targets.length,
      subscribers: opened.opened,
      events,
      expected,
      delivered: wait.frames,
      complete: wait.done,
      publishFailures: typeof failures === 'number' ? failures : 0,
      elapsedMs: wait.at - t0,
      clientUserPerFrame: (client1.user - client0.user) / Math.max(1, wait.frames),
      clientSysPerFrame: (client1.sys - client0.sys) / Math.max(1, wait.frames),
      publish,
      commit,
      breakdown,
    };
  } finally {
    await sys.teardownCluster();
  }
}

/** W5: one client resuming `behind` events back; events per second from its request to the last of them. */
export async function replay(name, sys, pool, { behind }, log) {
  const t = await sys.replayTargets(behind, pool);
  const run = async (target) => {
    const r = await pool.replay(target, behind, 60_000);
    const seconds = (r.tLast - r.tSent) / 1000;
    return { events: r.events, end: r.end, firstId: r.firstId, lastId: r.lastId, ms: seconds * 1000, rate: r.end === 'ok' ? behind / seconds : NaN };
  };
  const out = { behind, window: await run(t.window) };
  log(`  ${sys.name}: ${out.window.events} events in ${out.window.ms.toFixed(0)} ms (${out.window.end})`);
  if (t.outbox) {
    out.outbox = await run(await t.outbox());
    log(`  ${sys.name} (from the outbox): ${out.outbox.events} events in ${out.outbox.ms.toFixed(0)} ms (${out.outbox.end})`);
  }
  return out;
}

// ---- W6: write throughput ----------------------------------------------------

/** Per-write figures of one W6 run from its counters. */
function perWrite(ok, cpu, statements) {
  const calls = statements.reduce((n, st) => n + st.calls, 0);
  const dbMs = statements.reduce((n, st) => n + st.ms, 0);
  return {
    statementsPerWrite: calls / Math.max(1, ok),
    dbExecMsPerWrite: dbMs / Math.max(1, ok),
    top: statements.slice(0, 12).map((st) => ({ ...st, perWrite: st.calls / Math.max(1, ok), msPerCall: st.ms / Math.max(1, st.calls) })),
    ...cpu,
  };
}

/** What the client backends were doing, as shares of all sampled backends (pg_stat_activity). */
function activityShares({ samples, counts }) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const shares = Object.fromEntries(
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, v / Math.max(1, total)]),
  );
  return { samples, backendsPerSample: total / Math.max(1, samples), shares };
}

/**
 * W6 (service only): `concurrency` clients creating agents for `seconds`:
 * first the floor (the same transaction with `pg` directly, in a database of
 * its own on the same PostgreSQL), then the service with 1 replica, then with
 * 3 (writes spread round-robin, as a load balancer would). CPU of every
 * replica (the sequencer's numbering and publishing included) and of
 * PostgreSQL per write, statements per write (pg_stat_statements), and what
 * the backends wait on (pg_stat_activity, sampled).
 */
export async function writes(name, sys, pool, { seconds, concurrency }, log) {
  const prefix = `w6-${Date.now().toString(36)}`;
  const floorUrl = await sys.floorUrl();
  const run = async (label, key, op, msg, database) => {
    await sys.resetWrites(prefix);
    await sleep(500);
    const pids = op === 'pgwrites' ? [] : sys.replicaPids();
    const activity = sys.sampleActivity(database);
    const svc0 = sumCpuSplit(pids);
    const pg0 = sys.postgresCpu();
    const client0 = sumCpu(pool.pids());
    const r = await pool.writes(op, { ...msg, prefix: `${prefix}-${key}` }, concurrency, seconds);
    const client1 = sumCpu(pool.pids());
    const act = activityShares(await activity.stop());
    // The sequencer numbers and publishes the last writes after the clients stop: wait for it, so its CPU counts.
    if (op !== 'pgwrites') {
      await waitUntil(async () => !(await sys.db.query('SELECT EXISTS (SELECT 1 FROM outbox WHERE seq IS NULL) AS p')).rows[0].p, {
        timeoutMs: 15_000,
        everyMs: 50,
      });
    }
    const svc1 = sumCpuSplit(pids);
    const pg1 = sys.postgresCpu();
    const statements = await sys.statements(database);
    const lat = stats(r.latencies);
    const ok = r.ok;
    const out = {
      replicas: pids.length,
      writes: ok,
      statuses: r.statuses,
      seconds: r.ms / 1000,
      writesPerSec: ok / (r.ms / 1000),
      latency: lat,
      ...perWrite(
        ok,
        {
          serviceCpuPerWrite: pids.length ? (svc1.user + svc1.sys - svc0.user - svc0.sys) / 1000 / Math.max(1, ok) : undefined,
          serviceUserPerWrite: pids.length ? (svc1.user - svc0.user) / 1000 / Math.max(1, ok) : undefined,
          postgresCpuPerWrite: (pg1 - pg0) / 1000 / Math.max(1, ok),
          clientCpuPerWrite: (client1 - client0) / 1000 / Math.max(1, ok),
        },
        statements,
      ),
      activity: act,
    };
    log(
      `  ${label}: ${ok} writes in ${out.seconds.toFixed(1)} s = ${out.writesPerSec.toFixed(0)}/s, p50/p99 ${lat.p50.toFixed(1)}/${lat.p99.toFixed(1)} ms` +
        `${out.serviceCpuPerWrite !== undefined ? `, service ${out.serviceCpuPerWrite.toFixed(2)} ms CPU/write` : ''}, PostgreSQL ${out.postgresCpuPerWrite.toFixed(2)} ms CPU/write, ` +
        `${out.statementsPerWrite.toFixed(1)} statements/write ${JSON.stringify(r.statuses)}`,
    );
    return out;
  };
  const out = { seconds, concurrency };
  out.floor = await run('floor', 'floor', 'pgwrites', { url: floorUrl }, 'bench_floor');
  await sys.writeScaling(1);
  out.one = await run('1 replica', 'r1', 'httpwrites', { targets: sys.writeTargets() }, 'bench');
  await sys.writeScaling(3);
  out.three = await run('3 replicas', 'r3', 'httpwrites', { targets: sys.writeTargets() }, 'bench');
  await sys.writeScaling('restore');
  await sys.resetWrites(prefix);
  return out;
}

// ---- W7: 10,000 ordinary HTTP subscribers ---------------------------------------

/**
 * W7: `subscribers` ordinary `node:http` SSE clients (`http.get`, `agent:
 * false`) on one freshly started server: RSS per idle connection (and, for the
 * service, its V8 heap), then `events` published at `rate` (service: agent
 * creations through REST on another replica; nchan and raw: POST /pub):
 * CPU per delivered event of the measured process and publish→delivery
 * percentiles. For the service, where the time goes, per event: send→commit
 * (REST, transaction), commit→numbered (NOTIFY, sequencer), numbered→on the
 * bus (publish, seen by a Redis subscriber of our own), bus→first delivery,
 * and first→last delivery among the sampled connections (the flush).
 */
export async function fanoutHttp(name, sys, pool, { subscribers, events, rate, sampleEvery }, log) {
  const channel = channelOf(name);
  const pids = sys.measuredPids();
  const targets = sys.targets('main', channel);
  const warm = await pool.open(targets, 1, { client: 'http' });
  await sleep(1500);
  const rss0 = sumRss(pids);
  const heap0 = sys.heap ? await sys.heap() : undefined;
  const opened = await pool.open(targets, subscribers - warm.opened, { client: 'http', sampleEvery, concurrency: 64, timeoutMs: 120_000 });
  log(`  ${sys.name}: ${opened.opened + warm.opened}/${subscribers} http subscribers in ${(opened.ms / 1000).toFixed(1)} s ${JSON.stringify(opened.results)}`);
  const { rss: rss1, readings } = await settledRss(pids);
  const heap1 = sys.heap ? await sys.heap() : undefined;
  const held = (await pool.stats()).open;
  log(
    `  ${sys.name}: RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MB, ${((rss1 - rss0) / Math.max(1, opened.opened) / 1024).toFixed(2)} KB per connection`,
  );

  await sleep(500);
  await pool.samples();
  const headBefore = sys.head ? await sys.head() : 0;
  const tap = sys.busTap ? await sys.busTap() : undefined;
  const before = await pool.stats();
  const split0 = sumCpuSplit(pids);
  const clientCpu0 = sumCpu(pool.pids());
  const t0 = now();
  const rest = sys.createPublisher ? sys.createPublisher(`${channel}-a`) : undefined;
  const pub = rest ?? sys.publisher(channel);
  await paced(events, rate, (i, t) => pub.send(i, t));
  const expected = held * events;
  const wait = await pool.waitFrames(before.frames, expected, { timeoutMs: 90_000, stallMs: 8000 });
  const split1 = sumCpuSplit(pids);
  const clientCpu1 = sumCpu(pool.pids());
  const elapsedMs = wait.at - t0;
  const failures = await pub.flush();
  await tap?.stop();
  const samples = await pool.samples();
  const after = await pool.stats();
  const cpu = split1.user + split1.sys - split0.user - split0.sys;

  // Per event: first and last arrival among the sampled connections.
  const byId = new Map();
  for (const s of samples) {
    const e = byId.get(s.id) ?? { first: Infinity, last: -Infinity, bt: s.bt };
    e.first = Math.min(e.first, s.recv);
    e.last = Math.max(e.last, s.recv);
    byId.set(s.id, e);
  }
  let publish;
  let commit;
  let breakdown;
  if (rest) {
    const times = await sys.commitTimes(headBefore, headBefore + events + 10);
    const sentOf = (id) => rest.sent.get(times.get(id)?.key) ?? NaN;
    publish = stats(samples.map((s) => s.recv - sentOf(s.id)));
    commit = stats(samples.map((s) => s.recv - (times.get(s.id)?.ms ?? NaN)));
    const ev = [...byId.entries()].map(([id, e]) => ({ id, ...e, t: times.get(id), sent: sentOf(id), bus: tap?.times.get(id) ?? NaN }));
    breakdown = {
      events: ev.length,
      exactCommitTimes: ev.filter((e) => e.t?.exact).length,
      sendToCommit: stats(ev.map((e) => e.t?.ms - e.sent)),
      commitToSequenced: stats(ev.map((e) => e.t?.sequenced - e.t?.ms)),
      sequencedToBus: stats(ev.map((e) => e.bus - e.t?.sequenced)),
      busToFirst: stats(ev.map((e) => e.first - e.bus)),
      firstToLast: stats(ev.map((e) => e.last - e.first)),
      busToDelivery: stats(samples.map((s) => s.recv - (tap?.times.get(s.id) ?? NaN))),
    };
  } else {
    publish = stats(samples.filter((s) => s.bt > 0).map((s) => s.recv - s.bt));
    const ev = [...byId.values()].filter((e) => e.bt > 0);
    breakdown = { events: ev.length, publishToFirst: stats(ev.map((e) => e.first - e.bt)), firstToLast: stats(ev.map((e) => e.last - e.first)) };
  }
  await pool.closeAll();
  return {
    subscribers: opened.opened + warm.opened,
    openMs: opened.ms,
    openResults: opened.results,
    held,
    rssBeforeMB: rss0 / 2 ** 20,
    rssAfterMB: rss1 / 2 ** 20,
    rssPerConnKB: (rss1 - rss0) / Math.max(1, opened.opened) / 1024,
    rssSettleMB: readings,
    heapBefore: heap0,
    heapAfter: heap1,
    events,
    expected,
    delivered: wait.frames,
    complete: wait.done,
    closedDuring: after.closed - before.closed,
    publishFailures: typeof failures === 'number' ? failures : 0,
    elapsedMs,
    cpuPerEvent: cpu / Math.max(1, wait.frames),
    userPerEvent: (split1.user - split0.user) / Math.max(1, wait.frames),
    sysPerEvent: (split1.sys - split0.sys) / Math.max(1, wait.frames),
    cpuCores: cpu / 1000 / elapsedMs,
    clientCpuCores: (clientCpu1 - clientCpu0) / 1000 / elapsedMs,
    framesPerRead: (after.frames - before.frames) / Math.max(1, after.reads - before.reads),
    publish,
    commit,
    breakdown,
  };
}

// ---- W8: a resume storm --------------------------------------------------------

/**
 * W8 (service only): `clients` connections resume `behind` events back, all
 * at once, from the replica's window. Peak RSS of the serving replica over its
 * baseline (read every 20 ms from /proc), time until every client has all of
 * them, and RSS per resuming client.
 */
export async function resumeStorm(name, sys, pool, { clients, behind }, log) {
  const target = await sys.resumeTarget(behind, pool);
  const pids = sys.measuredPids();
  await sleep(1500);
  let base = 0;
  for (let i = 0; i < 5; i++) {
    base = Math.max(base, sumRss(pids));
    await sleep(100);
  }
  const heap0 = sys.heap ? await sys.heap() : undefined;
  let peak = base;
  let peakAt = 0;
  let sampling = true;
  const t0 = now();
  const sampler = (async () => {
    while (sampling) {
      const r = sumRss(pids);
      if (r > peak) {
        peak = r;
        peakAt = now() - t0;
      }
      await sleep(20);
    }
  })();
  const cpu0 = sumCpu(pids);
  // Each client gets the `retry:` frame, then the `behind` events.
  const r = await pool.resume(target, clients, behind + 1, 90_000);
  const cpu1 = sumCpu(pids);
  sampling = false;
  await sampler;
  const heap1 = sys.heap ? await sys.heap() : undefined;
  const rssEnd = sumRss(pids);
  await pool.closeAll();
  const allMs = r.lastDone - r.t0;
  log(
    `  ${sys.name}: ${r.complete}/${clients} clients had all ${behind} events after ${allMs.toFixed(0)} ms; ` +
      `RSS ${(base / 2 ** 20).toFixed(0)} → peak ${(peak / 2 ** 20).toFixed(0)} MB (${((peak - base) / clients / 1024).toFixed(1)} KB per client) ${JSON.stringify(r.results)}`,
  );
  const sorted = r.doneMs;
  return {
    clients,
    behind,
    opened: r.opened,
    complete: r.complete,
    results: r.results,
    allDoneMs: r.complete === clients ? allMs : NaN,
    doneP50Ms: percentile(sorted, 50),
    rssBaseMB: base / 2 ** 20,
    rssPeakMB: peak / 2 ** 20,
    rssEndMB: rssEnd / 2 ** 20,
    peakAtMs: peakAt,
    rssPerClientKB: (peak - base) / clients / 1024,
    cpuMs: (cpu1 - cpu0) / 1000,
    eventsPerSec: (r.complete * behind) / (allMs / 1000),
    heapBefore: heap0,
    heapAfter: heap1,
  };
}

// ---- W9, W10: Socket.IO ---------------------------------------------------------

/**
 * W9: W1's fan-out with Socket.IO clients (socket.io-client, WebSocket only) of
 * this service (each subscribed with a channel, an event filter and a resume
 * cursor) and of plain socket.io (a room, via @socket.io/redis-adapter).
 */
export const socketFanout = (name, sys, pool, size, log) => fanout(name, sys, pool, size, log, { client: 'socketio' });

/** W10: W3's idle connections with the same Socket.IO clients, on a fresh server. */
export const socketIdle = (name, sys, pool, size, log) => idle(name, sys, pool, size, log, { client: 'socketio' });
