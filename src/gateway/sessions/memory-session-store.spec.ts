import { MemorySessionStore } from './memory-session-store.js';

const limits = (idleMs: number, maxPerOwner = 10) => ({ maxEvents: 100, idleMs, maxPerOwner });
const held = (store: MemorySessionStore) => (store['sessions'] as Map<string, unknown>).size;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MemorySessionStore (streaming sessions on one replica without Redis)', () => {
  let store: MemorySessionStore;
  afterEach(() => store.stop());

  it('drops an expired session with its events and pending requests even when nobody looks it up again', async () => {
    store = new MemorySessionStore(limits(10_000));
    for (const id of ['s1', 's2']) {
      expect(await store.create(id, 'key:a', ['alpha'], false)).toBe(true);
      for (let i = 0; i < 20; i++) await store.append(id, 'notification', 'x'.repeat(1000));
      await store.request(id, 'key:a', { requestId: `r-${id}`, id: 1, deadline: Date.now() + 1000 }, 10);
    }
    // Before, they were dropped only when looked up or when some session was created.
    store.sweep(Date.now() + 20_000);
    expect(held(store)).toBe(0);
    expect(store['owners'].size).toBe(0);
    expect(await store.exists(['s1', 's2'])).toEqual([false, false]);
  });

  it('keeps a session used within idleMs, as Redis keeps its keys', async () => {
    store = new MemorySessionStore(limits(1000));
    await store.create('old', 'key:a', ['alpha'], false);
    await store.create('used', 'key:a', ['alpha'], false);
    const t0 = Date.now(); // 'old' expires by t0 + 1000
    await pause(50);
    await store.touch('used'); // expires after t0 + 1050
    store.sweep(t0 + 1025);
    expect(held(store)).toBe(1);
    expect((await store.get('used'))?.owner).toBe('key:a');
  });

  it('sweeps on a timer that does not keep the process alive and that stop() clears', async () => {
    store = new MemorySessionStore(limits(50)); // swept every 50 ms (every 30 s with a longer idleMs)
    await store.create('s1', 'key:a', ['alpha'], false);
    expect(store['sweeper'].hasRef()).toBe(false);
    await pause(250);
    expect(held(store)).toBe(0); // nothing looked it up
    store.stop();
    let swept = 0;
    store.sweep = () => void swept++;
    await pause(150);
    expect(swept).toBe(0);
  });

  it('counts only the owner’s unexpired sessions against the per-client limit', async () => {
    store = new MemorySessionStore(limits(100, 2));
    store.stop(); // no timed sweep here: create() itself must not count an expired session
    expect(await store.create('a1', 'key:a', ['alpha'], false)).toBe(true);
    expect(await store.create('a2', 'key:a', ['alpha'], false)).toBe(true);
    expect(await store.create('a3', 'key:a', ['alpha'], false)).toBe(false);
    expect(await store.create('b1', 'key:b', ['alpha'], false)).toBe(true); // another owner's count is its own
    await store.delete('a1');
    expect(await store.create('a3', 'key:a', ['alpha'], false)).toBe(true);
    await pause(150); // a2 and a3 expired (never swept)
    expect(await store.create('a4', 'key:a', ['alpha'], false)).toBe(true);
    expect(await store.create('a5', 'key:a', ['alpha'], false)).toBe(true);
    expect(await store.create('a6', 'key:a', ['alpha'], false)).toBe(false);
  });
});
