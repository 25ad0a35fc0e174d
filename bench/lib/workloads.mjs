// The workloads, each run the same way against every system. CPU and RSS are
// read from /proc for the system's measured (subscriber-serving) process
// only; delivered events are counted by the load client.
import { now, percentile, rssBytes, sleep, sumCpu, sumCpuSplit, sumRss } from './proc.mjs';

export const SIZES = {
  full: {
    W1: { subscribers: 2000, events: 500, rate: 200, sampleEvery: 20, fixedCostEvents: 200 },
    W2: { subscribers: 10_000, events: 200, rate: 50, sampleEvery: 100 },
    W3: { connections: 20_000 },
    W4: { subscribers: 1000, events: 200, rate: 20, sampleEvery: 5 },
    W5: { behind: 10_000 },
  },
  quick: {
    W1: { subscribers: 500, events: 200, rate: 200, sampleEvery: 10, fixedCostEvents: 100 },
    W2: { subscribers: 2000, events: 100, rate: 50, sampleEvery: 50 },
    W3: { connections: 3000 },
    W4: { subscribers: 300, events: 60, rate: 20, sampleEvery: 3 },
    W5: { behind: 5000 },
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

export async function fanout(name, sys, pool, { subscribers, events, rate, sampleEvery, fixedCostEvents = 0 }, log) {
  const channel = channelOf(name);
  const fixed = fixedCostEvents > 0 ? await fixedCost(sys, `${channel}-idle`, fixedCostEvents, rate) : undefined;
  const opened = await openWarm(pool, sys.targets('main', channel), subscribers, { sampleEvery });
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
export async function idle(name, sys, pool, { connections }, log) {
  const channel = channelOf(name);
  const pids = sys.measuredPids();
  const targets = sys.targets('main', channel);
  const warm = await pool.open(targets, 1); // sets the channel up (nchan); counted as held, not in the RSS delta
  await sleep(1500);
  const rss0 = sumRss(pids);
  const opened = await pool.open(targets, connections - warm.opened, { concurrency: 64, timeoutMs: 120_000 });
  log(`  ${sys.name}: ${opened.opened + warm.opened}/${connections} connections in ${(opened.ms / 1000).toFixed(1)} s ${JSON.stringify(opened.results)}`);
  // Let the process settle before reading RSS (incremental GC of the
  // handshakes' garbage, timers); the last reading counts.
  let rss1 = sumRss(pids);
  const settle = [];
  for (let i = 0; i < SETTLE_S * 2; i++) {
    await sleep(500);
    rss1 = sumRss(pids);
    settle.push(Math.round(rss1 / 2 ** 20));
  }
  const held = (await pool.stats()).open;
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
    held,
    stillOpenAfterEvent: after.open,
    reachedByEvent: wait.frames,
    rssBeforeMB: rss0 / 2 ** 20,
    rssAfterMB: rss1 / 2 ** 20,
    rssPerConnKB: (rss1 - rss0) / Math.max(1, opened.opened) / 1024,
    rssSettleMB: settle,
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
