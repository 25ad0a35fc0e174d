#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (from `node --cpu-prof` or bench/profile/probe.mjs)
// as a flame-graph-ish text: time by component (self and inclusive), the top
// functions by self time and by inclusive time.
//
//   node bench/profile/summarize.mjs file.cpuprofile [--top 25] [--per N --unit write]
//
// Inclusive time counts a sample once per component (or function) present on
// its stack. Only synchronous stacks are seen: the continuation of an `await`
// starts a new stack (its time is under the component that runs it, e.g. a
// pg result handler under "pg protocol", not under the caller that awaited).
import { readFileSync } from 'node:fs';

/** Components, tried in order on a frame's URL (then its name for URL-less V8 builtins). */
/** @type {[string, (url: string, name?: string) => boolean][]} */
export const COMPONENTS = [
  ['GC', (u, n) => n === '(garbage collector)'],
  ['idle', (u, n) => n === '(idle)'],
  ['V8/native (program)', (u, n) => n === '(program)' || n === '(root)'],
  ['zod validation', (u) => /node_modules\/zod\//.test(u) || /common\/zod-validation/.test(u)],
  ['TypeORM', (u) => /node_modules\/typeorm\//.test(u)],
  ['pg protocol', (u) => /node_modules\/(pg|pg-protocol|pg-pool|pg-types|pg-connection-string|postgres-[a-z]+|pgpass|buffer-writer|packet-reader)\//.test(u)],
  ['Redis (ioredis)', (u) => /node_modules\/(ioredis|redis-parser|denque|@ioredis|cluster-key-slot|standard-as-callback)\//.test(u)],
  [
    'Fastify',
    (u) =>
      /node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|fast-content-type-parse|secure-json-parse|toad-cache|process-warning|abstract-logging|pino|thread-stream|sonic-boom|rfdc|fast-decode-uri-component|ret|safe-regex2|content-type|on-exit-leak-free|atomic-sleep|quick-format-unescaped|real-require|fastq|reusify)\//.test(
        u,
      ),
  ],
  ['Nest', (u) => /node_modules\/(@nestjs|rxjs|reflect-metadata|tslib|iterare|uid|path-to-regexp|load-esm|file-type)\//.test(u)],
  ['prom-client', (u) => /node_modules\/(prom-client|tdigest|bintrees)\//.test(u)],
  ['other dependencies', (u) => /node_modules\//.test(u)],
  ['service: auth', (u) => /\/dist\/auth\//.test(u)],
  ['service: streaming', (u) => /\/dist\/streaming\//.test(u)],
  ['service: outbox/sequencer', (u) => /\/dist\/outbox\//.test(u)],
  ['service: bus', (u) => /\/dist\/bus\//.test(u)],
  ['service: registry', (u) => /\/dist\/registry\//.test(u)],
  ['service: common/ops/db', (u) => /\/dist\//.test(u)],
  ['bench probe', (u) => /bench\/profile\//.test(u)],
  ['JSON', (u, n) => !u && /^(parse|stringify|JSONParse|JSONStringify)$/.test(n)],
  // Native stream bindings: the time is the system call (a socket write; on loopback it also wakes the reader).
  [
    'socket writes (system calls)',
    (u, n) => !u && /^(writev|writeBuffer|writeUtf8String|writeLatin1String|writeAsciiString|writeUcs2String|shutdown)$/.test(n),
  ],
  [
    'Node core: net/stream/http',
    (u) =>
      /^node:(net|stream|_http|http|internal\/(stream|streams|http|net|js_stream|child_process|dgram|tls))/.test(u) || /internal\/(streams|http|net)/.test(u),
  ],
  ['AsyncLocalStorage (promise hooks)', (u) => /^node:(internal\/async_hooks|async_hooks|internal\/async_local_storage)/.test(u)],
  ['Node core: timers/async/events', (u) => /^node:(internal\/(timers|process|async_hooks|event_target|perf)|events|timers)/.test(u)],
  ['Node core: other', (u) => /^node:/.test(u)],
  ['V8 builtins and other native code', (u) => !u],
];

export function componentOf(url, name) {
  for (const [c, test] of COMPONENTS) if (test(url, name)) return c;
  return 'other';
}

/** A dependency's path from its package name (`pg-protocol/dist/parser.js`); the service's own from `dist/`. */
const short = (url) => {
  const u = url.replace(/^file:\/\//, '');
  if (u.includes('node_modules/')) return u.replace(/^.*node_modules\//, '');
  return u.replace(/^.*\/dist\//, 'dist/');
};

export function summarize(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fnKey = (n) => {
    const cf = n.callFrame;
    return `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  };
  const compOf = new Map(profile.nodes.map((n) => [n.id, componentOf(n.callFrame.url, n.callFrame.functionName)]));
  // Time per sample: the delta to the next one (the last gets the median).
  const { samples, timeDeltas } = profile;
  const dt = new Array(samples.length);
  for (let i = 0; i < samples.length; i++) dt[i] = (timeDeltas[i + 1] ?? 0) / 1000; // ms
  if (samples.length) dt[samples.length - 1] = dt.slice().sort((a, b) => a - b)[Math.floor(dt.length / 2)] ?? 0;

  const selfFn = new Map();
  const inclFn = new Map();
  const selfComp = new Map();
  const inclComp = new Map();
  let total = 0;
  let idle = 0;
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  for (let i = 0; i < samples.length; i++) {
    const t = dt[i];
    const leaf = nodes.get(samples[i]);
    total += t;
    if (leaf.callFrame.functionName === '(idle)') {
      idle += t;
      continue;
    }
    add(selfFn, fnKey(leaf), t);
    add(selfComp, compOf.get(leaf.id), t);
    const seenFn = new Set();
    const seenComp = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = nodes.get(id);
      const k = fnKey(n);
      if (n.callFrame.functionName === '(root)') continue;
      if (!seenFn.has(k)) {
        seenFn.add(k);
        add(inclFn, k, t);
      }
      const c = compOf.get(id);
      if (!seenComp.has(c)) {
        seenComp.add(c);
        add(inclComp, c, t);
      }
    }
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total,
    idleMs: idle,
    busyMs: total - idle,
    selfFn: sorted(selfFn),
    inclFn: sorted(inclFn),
    selfComp: sorted(selfComp),
    inclComp: sorted(inclComp),
  };
}

/** A sampling heap profile (`HeapProfiler.stopSampling`): bytes allocated by component and by function (self). */
export function summarizeHeap(profile) {
  const byComp = new Map();
  const byFn = new Map();
  let total = 0;
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  const walk = (n) => {
    const cf = n.callFrame;
    if (n.selfSize) {
      total += n.selfSize;
      add(byComp, componentOf(cf.url, cf.functionName), n.selfSize);
      add(byFn, `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`, n.selfSize);
    }
    for (const c of n.children ?? []) walk(c);
  };
  walk(profile.head);
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalBytes: total, byComp: sorted(byComp), byFn: sorted(byFn) };
}

/** A .heapsnapshot: count and self size per (node type, name), e.g. per constructor. */
export function snapshotByConstructor(snapshot) {
  const f = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const { nodes, strings } = snapshot;
  const out = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const name = type === 'object' || type === 'closure' || type === 'native' ? strings[nodes[i + iName]] : `(${type})`;
    const key = `${type === 'closure' ? 'closure ' : ''}${name}`;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

/** Markdown tables; `per` (e.g. writes or delivered events) adds a "per unit" column in µs. */
export function toMarkdown(s, { top = 25, per = undefined, unit = 'op' } = {}) {
  const pct = (v) => `${((100 * v) / Math.max(1e-9, s.busyMs)).toFixed(1)}%`;
  const perCol = (v) => (per ? ` | ${((v * 1000) / per).toFixed(1)}` : '');
  const perHead = per ? ` | µs per ${unit}` : '';
  const perSep = per ? ' | ---:' : '';
  const out = [];
  out.push(
    `Profiled ${(s.totalMs / 1000).toFixed(1)} s, of which on-CPU (not idle) ${(s.busyMs / 1000).toFixed(2)} s${per ? ` for ${per.toLocaleString('en-US')} ${unit}s: ${((s.busyMs * 1000) / per).toFixed(0)} µs per ${unit} in JS, GC and V8 (kernel time spent inside system calls is charged to the caller)` : ''}.`,
  );
  out.push('');
  out.push(`| component | self | inclusive${perHead} (self) |`);
  out.push(`| --- | ---: | ---:${perSep} |`);
  const incl = new Map(s.inclComp);
  for (const [c, v] of s.selfComp) out.push(`| ${c} | ${pct(v)} | ${pct(incl.get(c) ?? 0)}${perCol(v)} |`);
  out.push('');
  out.push(`Top ${top} functions by self time:`);
  out.push('');
  out.push(`| self | function${perHead} |`);
  out.push(`| ---: | ---${perSep} |`);
  for (const [f, v] of s.selfFn.slice(0, top)) out.push(`| ${pct(v)} | \`${f}\`${perCol(v)} |`);
  out.push('');
  out.push(`Top ${top} functions by inclusive time:`);
  out.push('');
  out.push(`| inclusive | function |`);
  out.push('| ---: | --- |');
  for (const [f, v] of s.inclFn.slice(0, top)) out.push(`| ${pct(v)} | \`${f}\` |`);
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  const arg = (n, d) => {
    const i = process.argv.indexOf(`--${n}`);
    return i === -1 ? d : process.argv[i + 1];
  };
  const s = summarize(JSON.parse(readFileSync(file, 'utf8')));
  console.log(toMarkdown(s, { top: Number(arg('top', 25)), per: arg('per') ? Number(arg('per')) : undefined, unit: arg('unit', 'op') }));
}
