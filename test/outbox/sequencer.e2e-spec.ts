import pg from 'pg';
import { OutboxSequencer } from '../../src/outbox/outbox.sequencer.js';
import { createTestDatabase, recordFigure, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const WRITERS = 16;
const TX_PER_WRITER = 25;

describe('outbox sequencer', () => {
  let db: { url: string; drop(): Promise<void> };
  let replicas: TestApp[];

  beforeAll(async () => {
    db = await createTestDatabase();
    // Two replicas on one database: one is elected to sequence; the numbering lock would keep them apart anyway.
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
          await c.query(`INSERT INTO outbox (type, resource_id, actor) SELECT 'agent.updated', $1 || '-' || g, 'writer' FROM generate_series(1, $2) g`, [
            `w${w}-${i}`,
            rows,
          ]);
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
      const { rows } = await check.query(
        'SELECT count(*)::int AS n, count(seq)::int AS sequenced, min(seq)::int AS lo, max(seq)::int AS hi, count(DISTINCT seq)::int AS distinct_seq FROM outbox',
      );
      expect(rows[0]).toEqual({ n: expectedTotal, sequenced: expectedTotal, lo: 1, hi: expectedTotal, distinct_seq: expectedTotal });
      expect((await check.query('SELECT last_seq::int FROM outbox_head')).rows[0].last_seq).toBe(expectedTotal);
    } finally {
      await check.end();
    }
    // One elected replica did all the work; the other paid nothing per commit.
    const runs = replicas.map((r) => r.app.get(OutboxSequencer).sequencedRuns);
    recordFigure(
      `sequenced ${expectedTotal} events from ${WRITERS} writers; runs per replica ${runs.join('/')}; id-order reader saw ${idOrderViolations} out-of-order ids`,
    );
    expect(runs.filter((n) => n > 0)).toHaveLength(1);
    expect(runs.reduce((a, b) => a + b, 0)).toBeGreaterThan(1);
  });

  it('gives a snapshot reader data consistent with exactly the cursor it returns, read off the lock while numbering goes on', async () => {
    const seq = replicas[0].app.get(OutboxSequencer);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const change = async (id: string) => {
      await c.query('BEGIN');
      await c.query(`INSERT INTO agents (id, name) VALUES ($1, $1)`, [id]);
      await c.query(`INSERT INTO outbox (type, resource_id) VALUES ('agent.created', $1)`, [id]);
      await c.query('COMMIT');
    };
    const seqOf = async (id: string) => (await c.query<{ seq: string | null }>('SELECT seq FROM outbox WHERE resource_id = $1', [id])).rows[0]?.seq;
    try {
      await change('snap-before'); // committed, maybe not yet numbered: the snapshot run numbers it
      const result = await seq.sequence(async (m, lastSeq) => {
        // While this read is open, a change commits and the leader numbers it: the lock is not held.
        await change('snap-during');
        const numbered = await waitFor(async () => (await seqOf('snap-during')) ?? false, 3000, 'the concurrent change to be numbered');
        const seen = await m.query<{ id: string }[]>(`SELECT id FROM agents WHERE id LIKE 'snap-%' ORDER BY id`);
        return { lastSeq, numberedDuring: Number(numbered), seen: seen.map((r) => r.id) };
      });
      const snap = result.snapshot!;
      expect(snap.seen).toEqual(['snap-before']); // the later change is not in the snapshot...
      expect(Number(await seqOf('snap-before'))).toBeLessThanOrEqual(result.lastSeq); // ...what it holds is at or before its cursor
      expect(snap.numberedDuring).toBeGreaterThan(result.lastSeq); // ...and what it lacks comes after it
    } finally {
      await c.end();
    }
  });
});
