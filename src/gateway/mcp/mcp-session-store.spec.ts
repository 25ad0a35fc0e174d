import { Redis } from 'ioredis';
import { type McpSessionRecord, MemorySessionStore, parseEventId, RedisSessionStore, STANDALONE_STREAM, type StoreSignal } from './mcp-session-store.js';

const record = (id: string): McpSessionRecord => ({
  id,
  principalId: 'p',
  protocolVersion: '2025-11-25',
  deferred: false,
  activated: [],
  createdAt: Date.now(),
  lastSeenAt: Date.now(),
});
const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
const call = (n: number) => ({ jsonrpc: '2.0' as const, id: n, result: { content: [{ type: 'text', text: 'x'.repeat(1000) }] } });

describe('MemorySessionStore (/mcp sessions on one replica without Redis)', () => {
  let store: MemorySessionStore;
  afterEach(() => store.close());

  it('drops an expired session with its events even when nobody looks it up again', async () => {
    store = new MemorySessionStore({ eventsPerStream: 100, ttlMs: 10_000 });
    for (const id of ids) {
      await store.put(record(id));
      for (let i = 0; i < 20; i++) await store.append(id, `request-${i}`, call(i));
    }
    // Before, a sweep ran only once 1,000 records were held: a few expired sessions kept every event for good.
    store.sweep(Date.now() + 20_000);
    for (const id of ids) {
      expect(await store.readAfter(id, 'request-0', '0-0', 10)).toEqual([]); // (a lookup of the record would drop them too)
      expect(await store.get(id)).toBeNull();
    }
  });

  it('drops a live session’s streams with no event for the TTL, as Redis expires their keys, and keeps the rest', async () => {
    store = new MemorySessionStore({ eventsPerStream: 100, ttlMs: 1000 });
    const [id] = ids;
    await store.put(record(id));
    await store.append(id, 'old-request', call(1));
    const t0 = Date.now(); // the old stream's TTL ends by t0 + 1000
    await new Promise((r) => setTimeout(r, 50));
    // Used since (touched), and a new request answered: their TTLs end after t0 + 1050.
    await store.touch(id, 'p');
    await store.append(id, 'new-request', call(2));
    store.sweep(t0 + 1025);
    expect(await store.readAfter(id, 'old-request', '0-0', 10)).toEqual([]);
    expect(await store.readAfter(id, 'new-request', '0-0', 10)).toHaveLength(1);
    expect(store['records'].has(id)).toBe(true);
  });
});

describe('MemorySessionStore.admit: sessions per principal', () => {
  it('returns the least recently used beyond the limit, counts a touched session as used, and forgets expired ones', async () => {
    const store = new MemorySessionStore({ eventsPerStream: 10, ttlMs: 60_000 });
    const sid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    for (let n = 1; n <= 3; n++) {
      await store.put(record(sid(n)));
      expect(await store.admit(sid(n), 'p', 3)).toEqual([]);
      await new Promise((r) => setTimeout(r, 5));
    }
    await store.touch(sid(1), 'p'); // used: now the most recent
    await store.put(record(sid(4)));
    expect(await store.admit(sid(4), 'p', 3)).toEqual([sid(2)]);
    expect(await store.admit(sid(5), 'q', 3)).toEqual([]); // another principal's count is its own
    await store.close();
  });
});

describe('parseEventId', () => {
  it('takes the ids this service issues and nothing else', () => {
    expect(parseEventId('_GET_stream@1795282388049-0')).toEqual({ streamId: '_GET_stream', entry: '1795282388049-0' });
    expect(parseEventId(`${ids[0]}@18446744073709551615-18446744073709551615`)).not.toBeNull();
    // Beyond 64 bits: never issued, and Redis refuses to read after it.
    expect(parseEventId('_GET_stream@18446744073709551616-0')).toBeNull();
    expect(parseEventId('_GET_stream@1-18446744073709551616')).toBeNull();
    expect(parseEventId('other@1-0')).toBeNull();
    expect(parseEventId('_GET_stream@-1-0')).toBeNull();
  });
});

describe('RedisSessionStore: who is woken by an append', () => {
  it('signals every append to the standalone stream, and a request stream’s only while it is watched (a resume reads it elsewhere)', async () => {
    const url = process.env.TEST_REDIS_URL!;
    const redis = new Redis(url, { lazyConnect: false });
    const store = new RedisSessionStore(redis, url, `spec${Date.now()}`, 'spec', { eventsPerStream: 100, ttlMs: 60_000 });
    const seen: StoreSignal[] = [];
    store.onSignal((s) => seen.push(s));
    try {
      await store.put(record(ids[0]));
      // The subscriber is ready once a signal of its own comes back.
      await store.signal({ kind: 'ended', sessionId: 'warm-up' });
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      seen.length = 0;
      const appended = () => seen.filter((s) => s.kind === 'appended').map((s) => (s as { streamId: string }).streamId);
      // A request stream nobody resumes: stored (readable), but every replica is not woken for it.
      await store.append(ids[0], 'req-1', call(1));
      await store.append(ids[0], STANDALONE_STREAM, { jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
      await new Promise((r) => setTimeout(r, 300));
      expect(appended()).toEqual([STANDALONE_STREAM]);
      expect(await store.readAfter(ids[0], 'req-1', '0-0', 10)).toHaveLength(1);
      // Watched: its appends wake the readers.
      await store.watch(ids[0], 'req-1');
      await store.append(ids[0], 'req-1', call(2));
      for (let i = 0; i < 100 && appended().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(appended()).toEqual([STANDALONE_STREAM, 'req-1']);
    } finally {
      await store.delete(ids[0]);
      await store.close();
      redis.disconnect();
    }
  });
});
