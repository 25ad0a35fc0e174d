/**
 * Group commit for one kind of write: while `maxInFlight` statements of it are
 * running, the writes that arrive wait and then go together as one statement
 * (one round trip, one transaction, one commit for all of them). Nothing waits
 * on a timer: a write that finds a free slot runs at once, alone, so a quiet
 * replica answers as fast as without batching; a busy one sends fewer, larger
 * statements.
 *
 * A batch is all or nothing in PostgreSQL: when its statement fails (one
 * duplicate id, a constraint, a lost connection), each of its writes runs
 * again on its own, so every caller gets the answer its write alone would get.
 * So `many` must reject only when its statement did not commit; a problem
 * with one result after the commit is that write's Error in the results.
 */
export class WriteBatcher<I, O> {
  private readonly queue: { input: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;

  constructor(
    /** One write alone. */
    private readonly single: (input: I) => Promise<O>,
    /** Several writes in one statement; the results (or a write's Error) in the inputs' order. */
    private readonly many: (inputs: I[]) => Promise<(O | Error)[]>,
    private readonly maxInFlight = 1,
    private readonly maxBatch = 64,
  ) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.execute(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async execute(batch: { input: I; resolve: (o: O) => void; reject: (e: unknown) => void }[]): Promise<void> {
    if (batch.length > 1) {
      let results: (O | Error)[] | undefined;
      try {
        results = await this.many(batch.map((b) => b.input));
      } catch {
        // Rolled back whole: each write on its own below.
      }
      if (results) {
        batch.forEach((b, i) => {
          const result = results[i];
          if (result instanceof Error) b.reject(result);
          else if (result === undefined) b.reject(new Error(`a batch of ${batch.length} writes returned ${results.length} results`));
          else b.resolve(result);
        });
        return;
      }
    }
    await Promise.all(
      batch.map(async (b) => {
        try {
          b.resolve(await this.single(b.input));
        } catch (error) {
          b.reject(error);
        }
      }),
    );
  }
}
