import { abortReason } from './errors.js';

/** Reconnection delays: exponential with jitter. */
export interface BackoffOptions {
  /** First delay, ms (default 250). */
  initialMs?: number;
  /** Largest delay, ms (default 30000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Part of each delay drawn at random, 0–1 (default 0.5: a delay lies between half and all of its exponential value). */
  jitter?: number;
}

/** The delay before reconnection attempt `attempt` (0 = the first retry after a connection ended). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialMs = 250, maxMs = 30_000, factor = 2, jitter = 0.5 } = options;
  const ceiling = Math.min(maxMs, initialMs * Math.pow(factor, Math.min(attempt, 64)));
  const j = Math.min(1, Math.max(0, jitter));
  return Math.round(ceiling * (1 - j) + ceiling * j * random());
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
