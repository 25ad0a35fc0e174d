/**
 * Calls in flight on one replica, per client and in all: a call starts only
 * with a slot, and gives it back once, however it ends. A client cannot hold
 * more than `perClient` (one key sending POST after POST, each a batch of
 * calls to a slow tool, held about 30 KB of the replica's memory per call,
 * without end), nor all clients together more than `total`.
 */
export class CallLimiter {
  private readonly byClient = new Map<string, number>();
  private running = 0;

  constructor(
    readonly perClient: number,
    readonly total: number,
  ) {}

  /** A slot for one call of `client` (its release, idempotent), or which bound refused it. */
  enter(client: string): (() => void) | 'client' | 'total' {
    const mine = this.byClient.get(client) ?? 0;
    if (mine >= this.perClient) return 'client';
    if (this.running >= this.total) return 'total';
    this.byClient.set(client, mine + 1);
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const left = (this.byClient.get(client) ?? 1) - 1;
      if (left > 0) this.byClient.set(client, left);
      else this.byClient.delete(client);
    };
  }

  /** Calls in flight: all, or one client's. */
  inFlight(client?: string): number {
    return client === undefined ? this.running : (this.byClient.get(client) ?? 0);
  }
}
