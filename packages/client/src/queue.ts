/**
 * A FIFO between a producer (a stream reader) and one consumer (an async
 * iterator). `push` resolves once there is room under `highWaterMark`, so a
 * consumer that stops pulling stops the reading too.
 */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private failure: { error: unknown } | undefined;
  private ended = false;
  private waiter?: () => void;
  private spaceWaiters: (() => void)[] = [];

  constructor(private readonly highWaterMark = 1000) {}

  async push(item: T): Promise<void> {
    this.items.push(item);
    this.wake();
    while (this.items.length >= this.highWaterMark && !this.ended && !this.failure) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
  }

  /** The consumer's next item; `undefined` once ended; rejects once failed (after the items before the failure). */
  async shift(): Promise<T | undefined> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift()!;
        if (this.items.length < this.highWaterMark) this.releaseSpace();
        return item;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  end(): void {
    this.ended = true;
    this.wake();
    this.releaseSpace();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
    this.releaseSpace();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private releaseSpace(): void {
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }
}

/** Why a `cancellable` iterator's signal aborted: its consumer called `return()`. */
export const RETURNED = Symbol('returned');

/**
 * An async generator whose `return()` takes effect at once: an async
 * generator's own `return()` waits behind a pending `next()` (a stream with
 * nothing to deliver would wait forever), so this one aborts the generator's
 * signal first (reason: `RETURNED`), which makes the pending `next()` settle.
 */
export function cancellable<T, R>(make: (signal: AbortSignal) => AsyncGenerator<T, R, undefined>, outer?: AbortSignal): AsyncGenerator<T, R, undefined> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer!.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  const inner = make(controller.signal);
  const iterator: AsyncGenerator<T, R, undefined> = {
    next: () => inner.next(),
    return: (value) => {
      outer?.removeEventListener('abort', onAbort);
      if (!controller.signal.aborted) controller.abort(RETURNED);
      return inner.return(value);
    },
    throw: (error) => inner.throw(error),
    [Symbol.asyncIterator]() {
      return iterator;
    },
  } as AsyncGenerator<T, R, undefined>;
  return iterator;
}
