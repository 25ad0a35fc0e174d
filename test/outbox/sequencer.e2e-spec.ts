import pg from 'pg';
import { OutboxSequencer } from '../../src/outbox/outbox.sequencer.js';
import { createTestDatabase, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const WRITERS = 16;
const TX_PER_WRITER = 25;

describe('outbox sequencer', () => {
  let db: { url: string; drop(): Promise<void> };
  let replicas: TestApp[];

  beforeAll(async () => {
    db = await createTestDatabase();
    // Two replicas on one database: two sequencers racing for the same rows.
    replicas = [await startTestApp({ databaseUrl: db.url }), await startTestApp({ databaseUrl: db.url })];
  });
  afterAll(async () => {
    for (const r of replicas) await r.close();
    await db.drop();
  });

  it('numbers concurrent commits contiguously, in commit order, as a concurrent reader sees them', async () => {
    let running = true;
    let readerLast = 0;
    let expectedTotal = Number.MAX_SAFE_INTEGER;
    const violations: string[] = [];
    let idOrderViolations = 0;
    const reader = (async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      let lastId = 0;
      try {
        while (running || readerLast < expectedTotal) {
          const { rows } = await c.query<{ seq: string }>('SELECT seq FROM outbox WHERE seq > $1 ORDER BY seq', [readerLast]);
          for (const r of rows) {
            const seq = Number(r.seq);
            if (seq !== readerLast + 1) violations.push(`after ${readerLast} the reader saw ${seq}`);
            readerLast = seq;
          }
          // Control: a reader following the bigserial id instead sees ids appear out of order.
          const ids = await c.query<{ id: string }>('SELECT id FROM outbox WHERE id > $1 ORDER BY id', [lastId]);
          for (const r of ids.rows) {
            if (Number(r.id) !== lastId + 1) idOrderViolations++;
            lastId = Math.max(lastId, Number(r.id));
          }
          await sleep(2);
        }
      } finally {
        await c.end();
      }
    })();

    let written = 0;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        for (let i = 0; i < TX_PER_WRITER; i++) {
          const rows = 1 + ((w + i) % 3);
          await c.query('BEGIN');
          await c.query(
            `INSERT INTO outbox (type, resource_id, actor) SELECT 'agent.updated', $1 || '-' || g, 'writer' FROM generate_series(1, $2) g`,
            [`w${w}-${i}`, rows],
          );
          // Hold the transaction open a random while: commits land out of id order.
          await c.query('SELECT pg_sleep($1)', [Math.random() * 0.015]);
          await c.query('COMMIT');
          written += rows;
        }
      } finally {
        await c.end();
      }
    });
    await Promise.all(writers);
    expectedTotal = written;
    running = false;
    await waitFor(() => readerLast >= expectedTotal, 20_000, `reader to reach ${expectedTotal}`);
    await reader;

    expect(violations).toEqual([]);
    expect(readerLast).toBe(expectedTotal);
    const check = new pg.Client({ connectionString: db.url });
    await check.connect();
    try {
      const { rows } = await check.query('SELECT count(*)::int AS n, count(seq)::int AS sequenced, min(seq)::int AS lo, max(seq)::int AS hi, count(DISTINCT seq)::int AS distinct_seq FROM outbox');
      expect(rows[0]).toEqual({ n: expectedTotal, sequenced: expectedTotal, lo: 1, hi: expectedTotal, distinct_seq: expectedTotal });
      expect((await check.query('SELECT last_seq::int FROM outbox_head')).rows[0].last_seq).toBe(expectedTotal);
    } finally {
      await check.end();
    }
    // Both replicas did part of the work (the lock hands runs to either).
    const runs = replicas.map((r) => r.app.get(OutboxSequencer).sequencedRuns);
    console.log(`sequenced ${expectedTotal} events from ${WRITERS} writers; runs per replica ${runs.join('/')}; id-order reader saw ${idOrderViolations} out-of-order ids`);
    expect(runs.reduce((a, b) => a + b, 0)).toBeGreaterThan(1);
  });

  it('gives a snapshot reader data consistent with exactly the cursor it returns', async () => {
    const seq = replicas[0]!.app.get(OutboxSequencer);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      // A committed but not yet sequenced event: the snapshot numbers it first.
      await c.query(`INSERT INTO outbox (type, resource_id) VALUES ('agent.created', 'snap')`);
      const result = await seq.sequence(async (m, lastSeq) => {
        const rows = await m.query('SELECT count(*)::int AS n, max(seq)::int AS hi FROM outbox');
        return { lastSeq, ...rows[0] };
      });
      expect(result.snapshot!.hi).toBe(result.lastSeq);
      expect(result.snapshot!.n).toBe(result.lastSeq);
    } finally {
      await c.end();
    }
  });
});
