// The end of a chaos run: the outbox is the truth. Every client must hold
// exactly the committed events its filter selects after the position it
// joined at, each once, in order; every acknowledged write must be there.
import { type ClientRecord, EVENT_TYPES, filterMatcher } from './clients.js';
import type { AckedWrite } from './writers.js';

export interface OutboxRow {
  seq: number;
  type: string;
  id: string;
  version: number | null;
  /** When the sequencer numbered it (Date.now() scale). */
  sequencedWall: number;
  /** When its row was written (inside the mutation's transaction). */
  createdWall: number;
}

export interface FaultRecord {
  label: string;
  /** Date.now() when it was injected, and when it was over (restored, restarted). */
  start: number;
  end?: number;
  detail?: string;
}

export interface ClientResult {
  name: string;
  group: string;
  kind: string;
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  unexpected: number;
  resets: number;
  connections: number;
  errors: number;
  fatal?: string;
  /** Longest time without any delivery while writes ran (ms). */
  maxGapMs: number;
  maxGapStart: number;
  /** Longest time from sequencing to delivery of an event it did get (ms). */
  maxLagMs: number;
  /** Largest distance (events) between the head and the position a reconnect resumed from. */
  maxResumeDistance: number;
  lostSeqs: number[];
  duplicateSeqs: { seq: number; wall: number }[];
  outOfOrderSeqs: { seq: number; after: number; wall: number }[];
  unexpectedSeqs: number[];
}

/** The newest seq sequenced at or before `wall` (outbox rows are in seq order, sequenced in that order). */
export function headAt(outbox: OutboxRow[], wall: number): number {
  let lo = 0;
  let hi = outbox.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (outbox[mid].sequencedWall <= wall) {
      found = outbox[mid].seq;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export function checkClient(rec: ClientRecord, outbox: OutboxRow[], bySeq: Map<number, OutboxRow>, writesFrom: number, writesUntil: number): ClientResult {
  const matches = filterMatcher(rec.events);
  const expected = outbox.filter((r) => r.seq > rec.startCursor && matches(r.type));
  const expectedSet = new Set(expected.map((r) => r.seq));
  const seen = new Set<number>();
  const duplicateSeqs: ClientResult['duplicateSeqs'] = [];
  const outOfOrderSeqs: ClientResult['outOfOrderSeqs'] = [];
  const unexpectedSeqs: number[] = [];
  let max = -Infinity;
  let maxLagMs = 0;
  for (const ev of rec.received) {
    if (seen.has(ev.seq)) {
      duplicateSeqs.push({ seq: ev.seq, wall: ev.wall });
      continue;
    }
    seen.add(ev.seq);
    const row = bySeq.get(ev.seq);
    if (!expectedSet.has(ev.seq) || row?.type !== ev.type) unexpectedSeqs.push(ev.seq);
    if (ev.seq < max) outOfOrderSeqs.push({ seq: ev.seq, after: max, wall: ev.wall });
    max = Math.max(max, ev.seq);
    if (row) maxLagMs = Math.max(maxLagMs, ev.wall - row.sequencedWall);
  }
  const lostSeqs = expected.filter((r) => !seen.has(r.seq)).map((r) => r.seq);

  // The longest stretch without a delivery while writes were running.
  let maxGapMs = 0;
  let maxGapStart = writesFrom;
  let prev = writesFrom;
  for (const ev of rec.received) {
    if (ev.wall < writesFrom) continue;
    if (ev.wall > writesUntil) break;
    if (ev.wall - prev > maxGapMs) {
      maxGapMs = ev.wall - prev;
      maxGapStart = prev;
    }
    prev = ev.wall;
  }
  if (writesUntil - prev > maxGapMs) {
    maxGapMs = writesUntil - prev;
    maxGapStart = prev;
  }

  // How far behind the head each reconnect resumed from (a start is not a resume).
  let maxResumeDistance = 0;
  for (const req of rec.requests) {
    if (!req.first) maxResumeDistance = Math.max(maxResumeDistance, headAt(outbox, req.wall) - req.from);
  }

  return {
    name: rec.name,
    group: rec.group,
    kind: rec.kind,
    expected: expected.length,
    received: rec.received.length,
    lost: lostSeqs.length,
    duplicated: duplicateSeqs.length,
    outOfOrder: outOfOrderSeqs.length,
    unexpected: unexpectedSeqs.length,
    resets: rec.resets.length,
    connections: rec.connections,
    errors: rec.errors.length,
    fatal: rec.fatal ? `${rec.fatal.code ?? ''} ${rec.fatal.message}`.trim() : undefined,
    maxGapMs,
    maxGapStart,
    maxLagMs,
    maxResumeDistance,
    lostSeqs,
    duplicateSeqs,
    outOfOrderSeqs,
    unexpectedSeqs,
  };
}

/** Acknowledged writes whose event is not in the outbox (matched on type, resource id and version). */
export function missingWrites(acked: AckedWrite[], outbox: OutboxRow[]): AckedWrite[] {
  const keys = new Map<string, number>();
  for (const r of outbox) {
    const k = `${r.type}|${r.id}|${r.version ?? ''}`;
    keys.set(k, (keys.get(k) ?? 0) + 1);
  }
  return acked.filter((w) => !keys.has(`${w.type}|${w.id}|${w.version ?? ''}`));
}

/** Holes in the outbox's sequence (it must be contiguous) and types no client listens for. */
export function outboxProblems(outbox: OutboxRow[]): string[] {
  const problems: string[] = [];
  for (let i = 1; i < outbox.length; i++) {
    if (outbox[i].seq !== outbox[i - 1].seq + 1) problems.push(`seq jumps from ${outbox[i - 1].seq} to ${outbox[i].seq}`);
  }
  const known = new Set<string>(EVENT_TYPES);
  const unknown = [...new Set(outbox.map((r) => r.type).filter((t) => !known.has(t)))];
  if (unknown.length > 0)
    problems.push(`the outbox holds event types the clients do not listen for: ${unknown.join(', ')} (update EVENT_TYPES in test/chaos/clients.ts)`);
  return problems.slice(0, 20);
}

/**
 * The fault that was active at `wall`, or had ended less than 3 s before;
 * otherwise says that no fault was near (and which one came last).
 */
export function faultAt(faults: FaultRecord[], wall: number): string {
  let found: FaultRecord | undefined;
  for (const f of faults) if (f.start <= wall + 250) found = f;
  if (!found) return 'before any fault';
  const end = found.end ?? Infinity;
  if (wall <= end + 3000) return found.label;
  return `no fault near (${((wall - end) / 1000).toFixed(0)} s after: ${found.label})`;
}

/** `1-5, 9, 12-40` for a sorted list of numbers. */
export function ranges(values: number[], limit = 12): string {
  const parts: string[] = [];
  let i = 0;
  while (i < values.length && parts.length < limit) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j] + 1) j++;
    parts.push(i === j ? String(values[i]) : `${values[i]}-${values[j]}`);
    i = j + 1;
  }
  if (i < values.length) parts.push('...');
  return parts.join(', ');
}

/** Median and max of `values` (0 for none). */
export function medianMax(values: number[]): { median: number; max: number; n: number } {
  if (values.length === 0) return { median: 0, max: 0, n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1], n: values.length };
}
