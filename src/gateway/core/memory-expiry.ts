/**
 * Expiry for the gateway's in-process session stores (one replica without
 * Redis): what Redis drops by a key's TTL, they drop when it is looked up and
 * on a periodic sweep, so a session nobody asks for again is freed too.
 */

/** How often a memory store sweeps (every TTL instead when that is shorter). */
export const MEMORY_SWEEP_MS = 30_000;

/** Calls `sweep` every MEMORY_SWEEP_MS (or `ttlMs`) on a timer that does not keep the process alive; clear it on close. */
export function sweepEvery(ttlMs: number, sweep: () => void): NodeJS.Timeout {
  return setInterval(sweep, Math.min(MEMORY_SWEEP_MS, ttlMs)).unref();
}

/** The entry unless it expired before `now`; an expired one is deleted and handed to `dropped` (to drop what hangs off it). */
export function unexpired<K, V extends { until: number }>(entries: Map<K, V>, key: K, now: number, dropped?: (key: K, value: V) => void): V | undefined {
  const value = entries.get(key);
  if (value && value.until < now) {
    entries.delete(key);
    dropped?.(key, value);
    return undefined;
  }
  return value;
}

/** Deletes every entry that expired before `now`, handing each to `dropped`. */
export function dropExpired<K, V extends { until: number }>(entries: Map<K, V>, now: number, dropped?: (key: K, value: V) => void): void {
  for (const key of entries.keys()) unexpired(entries, key, now, dropped);
}
