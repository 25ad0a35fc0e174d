import { WriteBatcher } from './write-batcher.js';

/** A write that completes when the test says so, recording how writes were sent. */
function recorder(failMany?: (inputs: number[]) => boolean) {
  const sent: number[][] = [];
  const pending: (() => void)[] = [];
  // Resolves when the test releases it, with what `value` returns or throws then.
  const hold = <T>(value: () => T) => new Promise<void>((go) => pending.push(go)).then(value);
  const single = (n: number) => {
    sent.push([n]);
    return hold(() => {
      if (n < 0) throw new Error(`bad ${n}`);
      return n * 10;
    });
  };
  const many = (inputs: number[]) => {
    sent.push([...inputs]);
    return hold(() => {
      if (failMany?.(inputs)) throw new Error('batch failed');
      return inputs.map((n) => n * 10);
    });
  };
  const release = async () => {
    while (pending.length > 0) {
      for (const go of pending.splice(0)) go();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { sent, single, many, release };
}

describe('WriteBatcher', () => {
  it('runs a write at once while a slot is free, and sends the ones that wait together', async () => {
    const r = recorder();
    const b = new WriteBatcher(r.single, r.many, 2, 64);
    const results = [1, 2, 3, 4, 5].map((n) => b.submit(n));
    // Two slots: 1 and 2 go alone at once; 3, 4, 5 wait.
    expect(r.sent).toEqual([[1], [2]]);
    await r.release();
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50]);
    expect(r.sent).toEqual([[1], [2], [3, 4, 5]]);
  });

  it('caps a batch at maxBatch', async () => {
    const r = recorder();
    const b = new WriteBatcher(r.single, r.many, 1, 3);
    const results = Array.from({ length: 8 }, (_, i) => b.submit(i + 1));
    await r.release();
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
    expect(r.sent).toEqual([[1], [2, 3, 4], [5, 6, 7], [8]]);
  });

  it('runs each write of a failed batch alone, so each gets its own answer', async () => {
    const r = recorder((inputs) => inputs.some((n) => n < 0));
    const b = new WriteBatcher(r.single, r.many, 1, 64);
    const first = b.submit(1);
    const rest = [2, -3, 4].map((n) =>
      b.submit(n).then(
        (v) => ({ v }),
        (e: Error) => ({ e: e.message }),
      ),
    );
    await r.release();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([{ v: 20 }, { e: 'bad -3' }, { v: 40 }]);
    expect(r.sent).toEqual([[1], [2, -3, 4], [2], [-3], [4]]);
  });

  it('rejects only the write whose result is an Error once a batch committed, and runs nothing again', async () => {
    const sent: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new WriteBatcher<number, number>(
      async (n) => {
        sent.push([n]);
        await gate;
        return n;
      },
      async (inputs) => {
        sent.push(inputs);
        return inputs.map((n) => (n === 3 ? new Error('unreadable row 3') : n * 10));
      },
      1,
      64,
    );
    const first = b.submit(1);
    const rest = [2, 3, 4].map((n) =>
      b.submit(n).then(
        (v) => ({ v }),
        (e: Error) => ({ e: e.message }),
      ),
    );
    release();
    expect(await first).toBe(1);
    expect(await Promise.all(rest)).toEqual([{ v: 20 }, { e: 'unreadable row 3' }, { v: 40 }]);
    expect(sent).toEqual([[1], [2, 3, 4]]);
  });

  it('frees its slot after a failure and keeps serving', async () => {
    const r = recorder();
    const b = new WriteBatcher(r.single, r.many, 1, 64);
    await expect(Promise.all([b.submit(-1), r.release()])).rejects.toThrow('bad -1');
    const later = b.submit(7);
    await r.release();
    expect(await later).toBe(70);
  });
});
