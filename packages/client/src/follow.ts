import { type CursorStore, memoryCursorStore } from './cursor-store.js';
import { StreamResetError } from './errors.js';
import { apiUrl } from './http.js';
import { AsyncQueue, cancellable } from './queue.js';
import { runResumable, type StreamOptions } from './sse.js';
import type { ChangeEvent } from './types.js';

/** What a `reset` frame says: continue from `cursor` once the state has been refetched. */
export interface ResetInfo {
  readonly cursor: number;
  readonly reason: string;
}

export interface FollowOptions extends StreamOptions {
  /** Event names or `resource.*` patterns (`['agent.updated', 'prompt.*']`); all readable events when omitted. */
  events?: string[];
  /**
   * Start after this `seq`: events with `seq > from` are delivered (replayed,
   * then live). Omitted: the cursor store's position, else only what happens
   * from now on. Use a discovery snapshot's `cursor` to follow on from it.
   */
  from?: number;
  /** Where the position is kept (default: memory). `fileCursorStore` from `@agentic-registry/client/node` keeps it across restarts. */
  cursorStore?: CursorStore;
  /**
   * Called on `reset` (the position is older than the service's retention):
   * refetch your state (e.g. `GET /discovery`), then the stream continues from
   * `info.cursor`. Awaited; no event is delivered meanwhile. Without this hook,
   * the iteration throws `StreamResetError`: a gap is never silent.
   */
  onReset?: (info: ResetInfo) => void | Promise<void>;
  /** Events buffered ahead of the consumer before the reading pauses (default 1000). */
  highWaterMark?: number;
}

type Item = { kind: 'event'; event: ChangeEvent } | { kind: 'cursor'; seq: number } | { kind: 'reset'; info: ResetInfo };

/**
 * Follows the change stream (`/api/v1/stream/changes`) as an async iterator
 * of change events, in `seq` order, each once.
 *
 * It reconnects on its own (exponential backoff with jitter) when the
 * stream ends, fails, or stays silent for twice the heartbeat, each time
 * resuming after the last `seq` received (`Last-Event-ID`), on whichever
 * replica answers. Events at or below the last `seq` are never delivered
 * again. The position saved in `cursorStore` is that of the last event the
 * caller finished with (saved when it asks for the next one), so a process
 * that dies mid-event sees that event again after a restart, never a gap.
 *
 * Aborting `signal` (or leaving the `for await` loop) closes the stream and
 * ends the iteration without an error. Bad credentials or a bad filter end
 * it with an `HttpError`.
 *
 * @example
 * ```ts
 * for await (const e of follow({ baseUrl, apiKey, events: ['agent.*'], from: 0 })) {
 *   console.log(e.seq, e.type, e.id);
 * }
 * ```
 */
export function follow(options: FollowOptions): AsyncGenerator<ChangeEvent, void, undefined> {
  return cancellable((signal) => followSignalled({ ...options, signal }), options.signal);
}

async function* followSignalled(options: FollowOptions): AsyncGenerator<ChangeEvent, void, undefined> {
  const store = options.cursorStore ?? memoryCursorStore();
  const start = options.from ?? (await store.load());
  // `received`: the newest position read from the wire (sent as Last-Event-ID, and the duplicate filter).
  let received = start;
  const queue = new AsyncQueue<Item>(options.highWaterMark ?? 1000);
  const local = new AbortController();
  const outer = options.signal;
  const onAbort = () => local.abort(outer!.reason);
  if (outer?.aborted) return;
  outer?.addEventListener('abort', onAbort, { once: true });
  const query = options.events?.length ? `?events=${encodeURIComponent(options.events.join(','))}` : '';

  const pump = runResumable(
    { ...options, signal: local.signal },
    {
      url: () => apiUrl(options, `/stream/changes${query}`),
      lastEventId: () => (received === undefined ? undefined : String(received)),
      onFrame: async (frame) => {
        if (frame.event === 'cursor') {
          const seq = Number(frame.data);
          if (Number.isSafeInteger(seq) && (received === undefined || seq > received)) {
            received = seq;
            await queue.push({ kind: 'cursor', seq });
          }
        } else if (frame.event === 'reset') {
          const info = JSON.parse(frame.data) as ResetInfo;
          received = info.cursor;
          await queue.push({ kind: 'reset', info: { cursor: info.cursor, reason: info.reason } });
        } else if (frame.event.includes('.')) {
          const event = JSON.parse(frame.data) as ChangeEvent;
          if (received !== undefined && event.seq <= received) return; // already delivered: a replay's overlap
          received = event.seq;
          await queue.push({ kind: 'event', event });
        }
      },
    },
  );
  pump.then(
    () => queue.end(),
    (error) => queue.fail(error),
  );

  try {
    for (;;) {
      const item = await queue.shift();
      if (item === undefined) return;
      if (item.kind === 'event') {
        yield item.event;
        await store.save(item.event.seq);
      } else if (item.kind === 'cursor') {
        await store.save(item.seq);
      } else {
        if (!options.onReset) throw new StreamResetError(item.info.cursor, item.info.reason);
        await options.onReset(item.info);
        await store.save(item.info.cursor);
      }
    }
  } finally {
    outer?.removeEventListener('abort', onAbort);
    local.abort();
    await pump.catch(() => undefined);
  }
}

/** The `EventTarget` form of `follow()`: `change` (detail: the event), `reset` (detail: `ResetInfo`), `error`, `end`. */
export class ChangeFeed extends EventTarget {
  private readonly controller = new AbortController();
  /** Resolves when the feed has ended (closed, aborted, or failed). */
  readonly done: Promise<void>;

  constructor(options: FollowOptions) {
    super();
    const outer = options.signal;
    outer?.addEventListener('abort', () => this.controller.abort(outer.reason), { once: true });
    const onReset =
      options.onReset ??
      ((info: ResetInfo) => {
        this.dispatchEvent(new CustomEvent('reset', { detail: info }));
      });
    this.done = (async () => {
      try {
        for await (const event of follow({ ...options, onReset, signal: this.controller.signal })) {
          this.dispatchEvent(new CustomEvent('change', { detail: event }));
        }
      } catch (error) {
        this.dispatchEvent(new CustomEvent('error', { detail: error }));
      } finally {
        this.dispatchEvent(new Event('end'));
      }
    })();
  }

  /** Stops following. */
  close(): void {
    this.controller.abort();
  }
}

/** `follow()` as an `EventTarget`: listen to `change`, `reset`, `error` and `end`. */
export function followFeed(options: FollowOptions): ChangeFeed {
  return new ChangeFeed(options);
}
