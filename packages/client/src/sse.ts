import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { backoffDelay, type BackoffOptions, sleep } from './backoff.js';
import { abortReason, HttpError, StreamIdleError } from './errors.js';
import { authHeaders, type ConnectionOptions, fetchOf, httpError } from './http.js';

/** One SSE message: `event` is `message` when the server named none. */
export interface SseFrame {
  readonly event: string;
  readonly id?: string;
  readonly data: string;
}

/** Where a resumable stream is, for status displays and logs. */
export type StreamStatus =
  { state: 'connecting'; attempt: number } | { state: 'open' } | { state: 'retrying'; attempt: number; delayMs: number; error: unknown };

/** Options shared by every resumable stream (`follow`, `followHealth`, gateway sessions). */
export interface StreamOptions extends ConnectionOptions {
  /**
   * The service's keep-alive interval, ms (default 30000, the service's
   * `SSE_KEEPALIVE_MS`). A stream with no byte for twice this long is dead:
   * it is dropped and resumed.
   */
  heartbeatMs?: number;
  /** Reconnection delays. */
  backoff?: BackoffOptions;
  /** Ends the stream (and, for iterators, the iteration). */
  signal?: AbortSignal;
  /** Told about connections, reconnections and their causes. */
  onStatus?: (status: StreamStatus) => void;
}

/**
 * Reads an SSE response body to its end, calling `onFrame` for each message
 * in order (awaited: a slow handler slows the reading, which is the
 * back-pressure the server sees). Rejects with `StreamIdleError` when no byte
 * arrives for `idleMs`, or with the signal's reason.
 */
export async function readSse(
  res: Response,
  onFrame: (frame: SseFrame) => void | Promise<void>,
  options: { idleMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  if (!res.body) throw new HttpError(res.status, { detail: 'the response has no body' });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (m) => pending.push(m) });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    void reader.cancel(error).catch(() => undefined);
  };
  const arm = () => {
    if (options.idleMs === undefined) return;
    clearTimeout(timer);
    timer = setTimeout(() => fail(new StreamIdleError(options.idleMs!)), options.idleMs);
  };
  const onAbort = () => fail(abortReason(options.signal));
  if (options.signal?.aborted) throw abortReason(options.signal);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    arm();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw failure ?? (error as Error);
      }
      if (failure) throw failure;
      if (chunk.done) return;
      arm();
      parser.feed(decoder.decode(chunk.value, { stream: true }));
      const frames = pending;
      pending = [];
      for (const m of frames) {
        await onFrame({ event: m.event ?? 'message', id: m.id, data: m.data });
        const failed = failure as Error | undefined; // set meanwhile by the idle timer or an abort
        if (failed) throw failed;
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    void reader.cancel().catch(() => undefined);
  }
}

export interface ResumableSpec {
  readonly url: () => string;
  /** The `Last-Event-ID` to send on each (re)connection; undefined: none. */
  readonly lastEventId: () => string | undefined;
  readonly onFrame: (frame: SseFrame) => void | Promise<void>;
  /** Called with each 2xx response before its frames are read. */
  readonly onOpen?: () => void | Promise<void>;
  /** Whether an HTTP error ends the stream for good (default: any non-retryable one, see `HttpError.retryable`). */
  readonly fatal?: (error: HttpError) => boolean;
}

/**
 * Keeps one SSE stream going until `options.signal` aborts: reconnects on
 * its own after the stream ends, fails or goes silent (exponential backoff
 * with jitter, `Retry-After` honoured), each time with the spec's
 * `Last-Event-ID`. Resolves when aborted; rejects on a fatal HTTP error (a
 * 401, a 403, a 400 on bad input…).
 */
export async function runResumable(c: StreamOptions, spec: ResumableSpec): Promise<void> {
  const signal = c.signal;
  const idleMs = 2 * (c.heartbeatMs ?? 30_000);
  const isFatal = spec.fatal ?? ((e: HttpError) => !e.retryable);
  let attempt = 0;
  while (!signal?.aborted) {
    c.onStatus?.({ state: 'connecting', attempt });
    let error: unknown;
    let opened = false;
    try {
      const extra: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache' };
      const last = spec.lastEventId();
      if (last !== undefined) extra['last-event-id'] = last;
      // The answer's head must come within the idle bound too: a half-dead path may accept and then say nothing.
      const attemptController = new AbortController();
      const onAbort = () => attemptController.abort(abortReason(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      const headTimer = setTimeout(() => attemptController.abort(new StreamIdleError(idleMs)), idleMs);
      let res: Response;
      try {
        res = await fetchOf(c)(spec.url(), { headers: authHeaders(c, extra), signal: attemptController.signal, credentials: 'same-origin', cache: 'no-store' });
      } catch (e) {
        throw attemptController.signal.reason instanceof StreamIdleError ? attemptController.signal.reason : e;
      } finally {
        clearTimeout(headTimer);
        signal?.removeEventListener('abort', onAbort);
      }
      if (!res.ok) throw await httpError(res);
      opened = true;
      attempt = 0;
      c.onStatus?.({ state: 'open' });
      await spec.onOpen?.();
      await readSse(res, spec.onFrame, { idleMs, signal });
    } catch (e) {
      error = e;
    }
    if (signal?.aborted) return;
    if (error instanceof HttpError && isFatal(error)) throw error;
    // A stream that ended cleanly after opening is resumed at once (a drain, a load balancer's cut); failures back off.
    const delayMs =
      error instanceof HttpError && error.retryAfterMs !== undefined
        ? Math.max(error.retryAfterMs, backoffDelay(attempt, c.backoff))
        : opened && error === undefined
          ? backoffDelay(0, { ...c.backoff, maxMs: c.backoff?.initialMs ?? 250 })
          : backoffDelay(attempt, c.backoff);
    c.onStatus?.({ state: 'retrying', attempt, delayMs, error: error ?? new Error('the stream ended') });
    attempt++;
    try {
      await sleep(delayMs, signal);
    } catch {
      return;
    }
  }
}
