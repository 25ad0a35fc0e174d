import { ListChangedCoalescer } from './list-changed.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const WINDOW = 40;

describe('ListChangedCoalescer', () => {
  it('announces the first change at once, a burst once more at the window’s end, and nothing when quiet', async () => {
    const c = new ListChangedCoalescer(WINDOW);
    const told: number[] = [];
    for (let i = 0; i < 1000; i++) c.changed('s1', 'tools', () => told.push(i));
    // Leading edge: the first change, synchronously.
    expect(told).toEqual([0]);
    await sleep(WINDOW * 3);
    // Trailing edge: one more, with the latest change's announcement; then the windows end by themselves.
    expect(told).toEqual([0, 999]);
    expect(c.size).toBe(0);
    c.changed('s1', 'tools', () => told.push(1000));
    expect(told).toEqual([0, 999, 1000]);
    c.close(false);
  });

  it('a steady flood is announced at most once per window, and its last change after it happened', async () => {
    const c = new ListChangedCoalescer(WINDOW);
    const told: number[] = [];
    const started = Date.now();
    let last = 0;
    while (Date.now() - started < WINDOW * 5) {
      last++;
      const n = last;
      c.changed('s1', 'tools', () => told.push(n));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const span = Date.now() - started;
    await sleep(WINDOW * 3);
    expect(last).toBeGreaterThan(50);
    expect(told.length).toBeLessThanOrEqual(Math.ceil(span / WINDOW) + 2);
    expect(told.at(-1)).toBe(last);
    c.close(false);
  });

  it('keys and groups are independent; forget drops a group’s pending announcement, flush makes it now', async () => {
    const c = new ListChangedCoalescer(WINDOW);
    const told: string[] = [];
    for (const [group, key] of [
      ['a', 'tools'],
      ['a', 'prompts'],
      ['b', 'tools'],
    ]) {
      c.changed(group, key, () => told.push(`${group}/${key}/1`));
      c.changed(group, key, () => told.push(`${group}/${key}/2`));
    }
    expect(told).toEqual(['a/tools/1', 'a/prompts/1', 'b/tools/1']);
    c.forget('a');
    c.flush('b');
    expect(told).toEqual(['a/tools/1', 'a/prompts/1', 'b/tools/1', 'b/tools/2']);
    expect(c.size).toBe(0);
    await sleep(WINDOW * 2);
    expect(told).toHaveLength(4);
    c.close(false);
  });

  it('close stops everything: pending announcements dropped (or made with flush), later changes ignored', async () => {
    const dropped = new ListChangedCoalescer(WINDOW);
    const flushed = new ListChangedCoalescer(WINDOW);
    const told: string[] = [];
    for (const [name, c] of [
      ['dropped', dropped],
      ['flushed', flushed],
    ] as const) {
      c.changed('s', 'tools', () => told.push(`${name}/1`));
      c.changed('s', 'tools', () => told.push(`${name}/2`));
    }
    dropped.close(false);
    flushed.close(true);
    dropped.changed('s', 'tools', () => told.push('after close'));
    await sleep(WINDOW * 2);
    expect(told).toEqual(['dropped/1', 'flushed/1', 'flushed/2']);
    expect(dropped.size + flushed.size).toBe(0);
  });

  it('an announcement that throws is reported, and the window still works', async () => {
    const errors: unknown[] = [];
    const c = new ListChangedCoalescer(WINDOW, (error) => errors.push(error));
    c.changed('s', 'tools', () => {
      throw new Error('boom');
    });
    c.changed('s', 'tools', () => {
      throw new Error('boom at the end');
    });
    await sleep(WINDOW * 3);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom', 'boom at the end']);
    expect(c.size).toBe(0);
    c.close(false);
  });
});
