import { CallLimiter } from './call-limiter.js';

describe('CallLimiter', () => {
  it('refuses a client past its bound while others still get slots; a release gives the slot back once', () => {
    const limiter = new CallLimiter(2, 10);
    const a1 = limiter.enter('a');
    const a2 = limiter.enter('a');
    expect([typeof a1, typeof a2]).toEqual(['function', 'function']);
    expect(limiter.enter('a')).toBe('client');
    expect(typeof limiter.enter('b')).toBe('function');
    expect([limiter.inFlight('a'), limiter.inFlight()]).toEqual([2, 3]);
    (a1 as () => void)();
    (a1 as () => void)(); // released twice: counted once
    expect([limiter.inFlight('a'), limiter.inFlight()]).toEqual([1, 2]);
    expect(typeof limiter.enter('a')).toBe('function');
    expect(limiter.enter('a')).toBe('client');
  });

  it('refuses everyone past the replica’s bound, and forgets a client with nothing in flight', () => {
    const limiter = new CallLimiter(5, 3);
    const slots = ['a', 'b', 'c'].map((c) => limiter.enter(c) as () => void);
    expect(limiter.enter('d')).toBe('total');
    expect(limiter.enter('a')).toBe('total');
    for (const release of slots) release();
    expect(limiter.inFlight()).toBe(0);
    expect((limiter as unknown as { byClient: Map<string, number> }).byClient.size).toBe(0);
    expect(typeof limiter.enter('d')).toBe('function');
  });
});
