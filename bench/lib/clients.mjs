// The load client: a few worker processes (bench/client-worker.mjs), each
// holding a share of the connections from a loopback source address of its
// own (so 20,000+ sockets never run out of ephemeral ports).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { now, sleep, spawnLimited, stopProc } from './proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export class ClientPool {
  constructor(workers) {
    this.size = workers;
    this.workers = [];
    this.seq = 0;
    this.round = 0;
  }

  start() {
    for (let i = 0; i < this.size; i++) {
      const proc = spawnLimited(process.execPath, [path.join(here, '..', 'client-worker.mjs')], { ipc: true, name: `client-${i}` });
      const pending = new Map();
      proc.child.on('message', (/** @type {any} */ msg) => {
        const p = pending.get(msg.reqId);
        if (p) {
          pending.delete(msg.reqId);
          p.resolve(msg);
        }
      });
      proc.exited.then(() => {
        for (const p of pending.values()) p.reject(new Error(`client worker ${i} exited: ${proc.output}`));
        pending.clear();
      });
      this.workers.push({ proc, pending, index: i });
    }
  }

  pids() {
    return this.workers.map((w) => w.proc.pid);
  }

  call(worker, msg, timeoutMs = 180_000) {
    const reqId = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.pending.delete(reqId);
        reject(new Error(`client worker ${worker.index}: ${msg.op} timed out`));
      }, timeoutMs);
      worker.pending.set(reqId, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      worker.proc.child.send({ ...msg, reqId });
    });
  }

  all(msg, timeoutMs) {
    return Promise.all(this.workers.map((w) => this.call(w, msg, timeoutMs)));
  }

  /**
   * Opens `count` connections over `targets` (connection g goes to
   * targets[g % n]; every `sampleEvery`th decodes its frames). Each call
   * takes fresh source addresses (127.0.R.W) so TIME_WAIT from an earlier
   * workload never collides.
   */
  async open(targets, count, { sampleEvery = 0, concurrency = 128, timeoutMs = 60_000, client = 'raw' } = {}) {
    this.round = (this.round % 250) + 1;
    const per = Math.ceil(count / this.size);
    const t0 = now();
    const replies = await Promise.all(
      this.workers.map((w) => {
        const offset = w.index * per;
        const n = Math.max(0, Math.min(per, count - offset));
        return this.call(w, {
          op: 'open',
          targets,
          count: n,
          offset,
          sampleEvery,
          concurrency,
          timeoutMs,
          client,
          localAddress: `127.0.${this.round}.${10 + w.index}`,
        });
      }),
    );
    const results = {};
    let opened = 0;
    for (const r of replies) {
      opened += r.opened;
      for (const [k, v] of Object.entries(r.results)) results[k] = (results[k] ?? 0) + v;
    }
    return { opened, results, ms: now() - t0 };
  }

  async stats() {
    const replies = await this.all({ op: 'stats' });
    return replies.reduce(
      (s, r) => ({
        frames: s.frames + r.frames,
        bytes: s.bytes + r.bytes,
        reads: s.reads + r.reads,
        open: s.open + r.open,
        closed: s.closed + r.closedAfterOpen,
      }),
      { frames: 0, bytes: 0, reads: 0, open: 0, closed: 0 },
    );
  }

  /** Latency samples since the last call: [{ recv, bt, id, target (index in the targets opened) }]. */
  async samples() {
    const replies = await this.all({ op: 'samples' });
    const out = [];
    for (const r of replies) for (let i = 0; i < r.recv.length; i++) out.push({ recv: r.recv[i], bt: r.bt[i], id: r.id[i], target: r.target[i] });
    return out;
  }

  async closeAll() {
    await this.all({ op: 'close' });
    await sleep(300);
  }

  /**
   * W8: `count` connections to `target` opened at once, split over the
   * workers; resolves when each has `expect` frames. Returns the opening time
   * (t0 of the first worker), when the last one completed, and per-connection
   * completion times (ms after t0 of its worker).
   */
  async resume(target, count, expect, timeoutMs = 90_000) {
    this.round = (this.round % 250) + 1;
    const per = Math.ceil(count / this.size);
    const replies = await Promise.all(
      this.workers.map((w) =>
        this.call(
          w,
          {
            op: 'resume',
            target,
            count: Math.max(0, Math.min(per, count - w.index * per)),
            expect,
            timeoutMs,
            localAddress: `127.0.${this.round}.${10 + w.index}`,
          },
          timeoutMs + 10_000,
        ),
      ),
    );
    const results = {};
    for (const r of replies) for (const [k, v] of Object.entries(r.results)) results[k] = (results[k] ?? 0) + v;
    const t0 = Math.min(...replies.map((r) => r.t0));
    const doneMs = replies.flatMap((r) => r.doneMs.map((d) => d + r.t0 - t0)).sort((a, b) => a - b);
    return {
      t0,
      opened: replies.reduce((n, r) => n + r.opened, 0),
      complete: replies.reduce((n, r) => n + r.complete, 0),
      results,
      ends: replies.map((r) => r.end),
      doneMs,
      lastDone: Math.max(...replies.map((r) => r.lastDone)),
    };
  }

  /**
   * W6: write load from every worker at once (`op` 'httpwrites' or
   * 'pgwrites'), `concurrency` in all, split over the workers.
   */
  async writes(op, msg, concurrency, seconds) {
    const per = Math.ceil(concurrency / this.size);
    const replies = await Promise.all(
      this.workers.map((w) =>
        this.call(
          w,
          { ...msg, op, seconds, concurrency: Math.max(0, Math.min(per, concurrency - w.index * per)), prefix: `${msg.prefix}-${w.index}` },
          seconds * 1000 + 60_000,
        ),
      ),
    );
    const statuses = {};
    for (const r of replies) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    return { ok: replies.reduce((n, r) => n + r.ok, 0), ms: Math.max(...replies.map((r) => r.ms)), statuses, latencies: replies.flatMap((r) => r.latencies) };
  }

  replay(target, expect, timeoutMs) {
    return this.call(this.workers[0], { op: 'replay', target, expect, timeoutMs, localAddress: '127.0.0.9' }, timeoutMs + 5000);
  }

  /**
   * Waits until `expected` more frames than `base` arrived, or no progress
   * for `stallMs`, or `timeoutMs`. Returns { frames, done, at }.
   */
  async waitFrames(base, expected, { timeoutMs, stallMs = 5000, everyMs = 50 }) {
    const until = now() + timeoutMs;
    let last = -1;
    let lastChange = now();
    for (;;) {
      const s = await this.stats();
      const got = s.frames - base;
      const t = now();
      if (got >= expected) return { frames: got, done: true, at: t };
      if (got !== last) {
        last = got;
        lastChange = t;
      } else if (t - lastChange > stallMs) return { frames: got, done: false, at: lastChange, stalled: true };
      if (t > until) return { frames: got, done: false, at: t };
      await sleep(everyMs);
    }
  }

  async stop() {
    await Promise.all(
      this.workers.map(async (w) => {
        try {
          await this.call(w, { op: 'exit' }, 3000);
        } catch {
          /* killed below */
        }
        await stopProc(w.proc, 2000);
      }),
    );
  }
}
