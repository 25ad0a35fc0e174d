#!/usr/bin/env node
// What a different flush strategy in the hub would give at 10,000 ordinary
// HTTP subscribers, measured on a bare Node server before touching src/
// (bench/profile/fanout-server.mjs): per-event (nchan's way), coalesce (the
// hub today), rolling (sliced passes, per-socket cursor). Same clients as W7
// (http.get, agent: false, every 100th decoding), 200 events at 50/s.
// Prints markdown (docs/profiles/fanout.md is written from it).
//
//   node bench/profile/flush-strategies.mjs [--subscribers 10000] [--events 200] [--rate 50] [--strategies coalesce,rolling,per-event]
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientPool } from '../lib/clients.mjs';
import { freePort, killAllStarted, now, percentile, sleep, spawnLimited, stopProc, sumCpu, sumCpuSplit, waitForPort } from '../lib/proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i === -1 ? d : process.argv[i + 1];
};
const SUBSCRIBERS = Number(arg('subscribers', 10_000));
const EVENTS = Number(arg('events', 200));
const RATE = Number(arg('rate', 50));
const STRATEGIES = String(arg('strategies', 'coalesce,rolling,per-event')).split(',');
const watchdog = setTimeout(() => {
  console.error('flush strategies: time limit (6 min) reached');
  killAllStarted();
  process.exit(1);
}, 6 * 60_000);
watchdog.unref();

const log = (m) => console.error(`[flush] ${m}`);
const stats = (values) => {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { n: v.length, p50: percentile(v, 50), p90: percentile(v, 90), p99: percentile(v, 99), max: v.at(-1) ?? NaN };
};
const f0 = (v) => (Number.isFinite(v) ? v.toFixed(0) : '–');
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const post = (port, body) =>
  new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/pub', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', resolve);
    req.end(body);
  });
const getJson = (port, p) =>
  new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString())));
    });
  });

async function main() {
  const pool = new ClientPool(2);
  pool.start();
  const rows = [];
  try {
    for (const strategy of STRATEGIES) {
      const port = await freePort();
      const proc = spawnLimited(process.execPath, [path.join(here, 'fanout-server.mjs')], {
        name: `fanout-${strategy}`,
        env: { ...process.env, PORT: String(port), STRATEGY: strategy },
      });
      await waitForPort(port, 10_000, proc);
      const target = [{ port, path: '/sub', headers: {} }];
      const opened = await pool.open(target, SUBSCRIBERS, { client: 'http', sampleEvery: 100, concurrency: 64, timeoutMs: 120_000 });
      log(`${strategy}: ${opened.opened} subscribers`);
      await sleep(2000);
      await pool.samples();
      const before = await pool.stats();
      const c0 = sumCpuSplit([proc.pid]);
      const cl0 = sumCpu(pool.pids());
      const t0 = now();
      const pending = [];
      for (let i = 0; i < EVENTS; i++) {
        const wait = t0 + (i * 1000) / RATE - now();
        if (wait > 0.5) await sleep(wait);
        const bt = now();
        pending.push(
          post(
            port,
            `{"seq":${i + 1},"type":"agent.updated","resource":"agent","id":"bench-1","action":"updated","ts":"${new Date().toISOString()}","version":${i + 1},"actor":"bench","data":{"bt":${bt.toFixed(3)}}}`,
          ),
        );
      }
      await Promise.all(pending);
      const done = await pool.waitFrames(before.frames, opened.opened * EVENTS, { timeoutMs: 90_000, stallMs: 8000 });
      const c1 = sumCpuSplit([proc.pid]);
      const cl1 = sumCpu(pool.pids());
      const after = await pool.stats();
      const samples = await pool.samples();
      const st = await getJson(port, '/stats');
      const byId = new Map();
      for (const s of samples) {
        const e = byId.get(s.id) ?? { first: Infinity, last: -Infinity, bt: s.bt };
        e.first = Math.min(e.first, s.recv);
        e.last = Math.max(e.last, s.recv);
        byId.set(s.id, e);
      }
      const lat = stats(samples.map((s) => s.recv - s.bt));
      const spread = stats([...byId.values()].map((e) => e.last - e.first));
      const cpu = c1.user + c1.sys - c0.user - c0.sys;
      rows.push({
        strategy,
        subscribers: opened.opened,
        delivered: done.frames,
        expected: opened.opened * EVENTS,
        elapsed: done.at - t0,
        lat,
        spread,
        cpuPerEvent: cpu / Math.max(1, done.frames),
        kernelPerEvent: (c1.sys - c0.sys) / Math.max(1, done.frames),
        writesPerSocket: st.writes / Math.max(1, opened.opened),
        framesPerRead: (after.frames - before.frames) / Math.max(1, after.reads - before.reads),
        clientCores: (cl1 - cl0) / 1000 / (done.at - t0),
        flush: stats(st.durations),
        flushes: st.durations.length,
      });
      log(`${strategy}: p50 ${f0(lat.p50)} p99 ${f0(lat.p99)} ms, ${(cpu / Math.max(1, done.frames)).toFixed(2)} µs/event`);
      await pool.closeAll();
      await stopProc(proc);
      await sleep(1000);
    }
  } finally {
    await pool.stop();
    agent.destroy();
  }
  const out = [];
  out.push(
    `| strategy | publish→delivery p50 / p90 / p99 / max (ms) | first→last delivery of an event p50 / p99 (ms) | server flush (pass) duration p50 / p99 (ms) | server CPU µs per delivered event (kernel) | writes per socket for ${EVENTS} events | events per client read | load client cores | delivered |`,
  );
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    out.push(
      `| ${r.strategy} | ${f0(r.lat.p50)} / ${f0(r.lat.p90)} / ${f0(r.lat.p99)} / ${f0(r.lat.max)} | ${f0(r.spread.p50)} / ${f0(r.spread.p99)} | ${f0(r.flush.p50)} / ${f0(r.flush.p99)} | ${r.cpuPerEvent.toFixed(2)} (${r.kernelPerEvent.toFixed(2)}) | ${r.writesPerSocket.toFixed(1)} | ${r.framesPerRead.toFixed(2)} | ${r.clientCores.toFixed(2)} | ${r.delivered.toLocaleString('en-US')} / ${r.expected.toLocaleString('en-US')} |`,
    );
  }
  console.log(out.join('\n'));
}

main()
  .then(() => process.exit(0))
  .catch((error) => {
    console.error(error);
    killAllStarted();
    process.exit(1);
  });
