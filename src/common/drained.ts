/** A writer that says when it can take more (`drain`) and when it is gone (`close`): a Node stream, an engine.io socket. */
export interface Drainable {
  once(event: 'drain' | 'close', listener: () => void): unknown;
  removeListener(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Resolves once `target` has drained or closed, whichever comes first, and
 * leaves no listener behind (racing two `events.once` would leave the loser's
 * on a long-lived stream at every wait).
 */
export function drainedOrClosed(target: Drainable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      target.removeListener('drain', done);
      target.removeListener('close', done);
      resolve();
    };
    target.once('drain', done);
    target.once('close', done);
  });
}
