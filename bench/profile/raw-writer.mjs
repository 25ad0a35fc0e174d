// A bare Node REST writer: what `POST /api/v1/agents` costs in Node without
// Nest, Fastify, TypeORM or zod, for bench/profile/write-path.mjs. `node:http`,
// JSON.parse of the body, the id checked against the service's slug pattern,
// `pg` directly (a pool of 10, like the service), 201 with the row as JSON.
//
//   PORT=0 DATABASE_URL=... MODE=service-sql|single node bench/profile/raw-writer.mjs
//
// MODE service-sql: the service's 8 statements (API-key SELECT; BEGIN;
// advisory lock; count(*); INSERT; SELECT; INSERT outbox; COMMIT).
// MODE single: the API key cached in memory, one statement (CTE: cap
// counter, row, outbox row) — what the service could do.
import { createHash } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const MODE = process.env.MODE ?? 'single';
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const keys = new Map(); // key hash -> principal (MODE single)

async function principalOf(key) {
  const hash = createHash('sha256').update(key).digest('hex');
  if (MODE === 'single' && keys.has(hash)) return keys.get(hash);
  const r = await pool.query('SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())', [hash]);
  const p = r.rows[0] ? { id: r.rows[0].id, role: r.rows[0].role } : undefined;
  if (p) keys.set(hash, p);
  return p;
}

async function create(a) {
  const params = [a.id, a.name, a.description ?? '', JSON.stringify(a.model ?? {}), a.tags ?? [], JSON.stringify(a.metadata ?? {})];
  if (MODE === 'single') {
    const r = await pool.query(
      `WITH cap AS (UPDATE registry_counts SET n = n + 1 WHERE kind = 'agents' AND n < $7 RETURNING n),
            a AS (INSERT INTO agents (id, name, description, model, tags, metadata) SELECT $1, $2, $3, $4, $5, $6 FROM cap RETURNING *),
            o AS (INSERT INTO outbox (type, resource_id, version, actor, data) SELECT 'agent.created', a.id, a.version, 'bench', NULL FROM a)
       SELECT * FROM a`,
      [...params, 10_000_000],
    );
    return r.rows[0];
  }
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [7_346_110_101]);
    await c.query('SELECT count(*)::int AS n FROM agents');
    await c.query('INSERT INTO agents (id, name, description, model, tags, metadata) VALUES ($1, $2, $3, $4, $5, $6)', params);
    const r = await c.query(
      'SELECT a.*, (SELECT p.version FROM prompts p WHERE p.agent_id = a.id AND p.active) AS active_prompt_version FROM agents a WHERE a.id = $1',
      [a.id],
    );
    await c.query('INSERT INTO outbox (type, resource_id, version, actor, data) VALUES ($1, $2, $3, $4, $5)', ['agent.created', a.id, 1, 'bench', null]);
    await c.query('COMMIT');
    return r.rows[0];
  } catch (error) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    c.release();
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', async () => {
    try {
      const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const principal = auth && (await principalOf(auth[1]));
      if (!principal) return res.writeHead(401).end();
      const body = JSON.parse(Buffer.concat(chunks).toString());
      if (typeof body.id !== 'string' || !SLUG.test(body.id) || typeof body.name !== 'string') return res.writeHead(400).end();
      const row = await create(body);
      const out = JSON.stringify({ ...row, createdAt: row.created_at, updatedAt: row.updated_at });
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), etag: `"${row.version}"` }).end(out);
    } catch (error) {
      res.writeHead(500).end(String(error.message));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () =>
  console.log(`raw writer on ${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`),
);
process.on('SIGTERM', () => {
  server.close();
  void pool.end().finally(() => process.exit(0));
});
