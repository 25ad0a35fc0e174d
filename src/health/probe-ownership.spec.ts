import { rendezvousOwner } from './probe-ownership.js';

describe('rendezvous ownership', () => {
  const servers = Array.from({ length: 1000 }, (_, i) => `server-${i}`);

  it('spreads 1,000 servers evenly over the replicas', () => {
    for (const members of [
      ['a', 'b'],
      ['r1-x', 'r2-y', 'r3-z'],
    ]) {
      const counts = new Map<string, number>();
      for (const s of servers) {
        const owner = rendezvousOwner(s, members)!;
        counts.set(owner, (counts.get(owner) ?? 0) + 1);
      }
      const fair = servers.length / members.length;
      for (const m of members) expect(Math.abs(counts.get(m)! - fair) / fair).toBeLessThan(0.12);
    }
  });

  it('moves only the servers of a replica that leaves, and about 1/N when one joins', () => {
    const before = servers.map((s) => rendezvousOwner(s, ['a', 'b', 'c']));
    const afterLeave = servers.map((s) => rendezvousOwner(s, ['a', 'b']));
    servers.forEach((_, i) => {
      if (before[i] !== 'c') expect(afterLeave[i]).toBe(before[i]);
    });
    const afterJoin = servers.map((s) => rendezvousOwner(s, ['a', 'b', 'c', 'd']));
    const moved = servers.filter((_, i) => afterJoin[i] !== before[i]);
    expect(moved.every((_, i) => afterJoin[servers.indexOf(moved[i])] === 'd')).toBe(true);
    expect(moved.length / servers.length).toBeGreaterThan(0.18);
    expect(moved.length / servers.length).toBeLessThan(0.32);
  });

  it('is the same whatever the order of the member list, and undefined without members', () => {
    expect(rendezvousOwner('x', ['a', 'b', 'c'])).toBe(rendezvousOwner('x', ['c', 'a', 'b']));
    expect(rendezvousOwner('x', [])).toBeUndefined();
  });
});
