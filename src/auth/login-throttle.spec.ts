import { lockoutMs, MemoryThrottleStore, type ThrottleRule } from './login-throttle.js';

const rule: ThrottleRule = { threshold: 3, backoffMs: 1000, backoffMaxMs: 8000, windowMs: 60_000 };

describe('login throttling (per-replica store and backoff)', () => {
  it('locks after the threshold and doubles the lock with each further failure, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => lockoutMs(n, rule))).toEqual([0, 0, 1000, 2000, 4000, 8000, 8000]);
    expect(lockoutMs(10_000, rule)).toBe(8000);
  });

  it('tracks failures per key with expiry, and a reset clears a key', () => {
    let now = 1_000_000;
    const store = new MemoryThrottleStore(() => now);
    expect(store.fail('u:a', rule)).toBe(0);
    expect(store.fail('u:a', rule)).toBe(0);
    expect(store.lockedForMs(['u:a', 'ip:x'])).toBe(0);
    expect(store.fail('u:a', rule)).toBe(1000);
    expect(store.lockedForMs(['ip:x', 'u:a'])).toBe(1000);
    now += 1000;
    expect(store.lockedForMs(['u:a'])).toBe(0);
    expect(store.fail('u:a', rule)).toBe(2000);
    store.reset('u:a');
    expect(store.lockedForMs(['u:a'])).toBe(0);
    // The window forgets old failures.
    store.fail('u:b', rule);
    store.fail('u:b', rule);
    now += 61_000;
    expect(store.fail('u:b', rule)).toBe(0);
    store.sweep();
    expect(store.size).toBe(1);
  });
});
