import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, rows, sql } from '../../database/sql.js';
import { OUTBOX_INSERT } from '../../outbox/outbox.repository.js';
import type { Statement } from '../registry.writer.js';
import { HEALTH_CHECK_DEFAULTS, type HealthCheck, type Transport } from './mcp-server.schemas.js';

/** The mask shown instead of every header value. */
export const MASK = '***';

/** An MCP server as the API shows it: header names only, values masked; the URL's query values masked too. */
export interface McpServer {
  id: string;
  name: string;
  url: string;
  transport: Transport;
  headers: Record<string, typeof MASK>;
  healthCheck: HealthCheck;
  enabled: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The encrypted header set as stored: the sealed JSON object (null when empty) and its names. */
export interface SealedHeaders {
  secret: string | null;
  names: string[];
}

export interface NewMcpServer {
  id: string;
  name: string;
  url: string;
  transport: Transport;
  healthCheck: HealthCheck;
  enabled: boolean;
}

interface McpServerRow {
  id: string;
  name: string;
  url: string;
  transport: Transport;
  header_names: string[];
  health_check: HealthCheck;
  enabled: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** Never `*`: the ciphertext stays out of every query that feeds a response. */
const COLUMNS = 'id, name, url, transport, header_names, health_check, enabled, version, created_at, updated_at';

/**
 * A create in one statement (one round trip, its own transaction), as an
 * agent's: the cap's counter row locked, the server inserted while the count
 * is below the cap, its `mcp_server.created` outbox row from what the INSERT
 * returned. `taken` keeps "already exists" before "over the cap".
 */
const CREATE = `
WITH cap AS (SELECT n FROM registry_counts WHERE table_name = 'mcp_servers' FOR UPDATE),
s AS (
  INSERT INTO mcp_servers (id, name, url, transport, headers_secret, header_names, health_check, enabled, url_secret)
  SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text[], $7::jsonb, $8::boolean, $9::text FROM cap WHERE cap.n < $11::bigint
  RETURNING ${COLUMNS}
),
o AS (${OUTBOX_INSERT} SELECT 'mcp_server.created', s.id, s.version, $10::text, NULL FROM s)
SELECT s.*, s.id IS NULL AND EXISTS (SELECT 1 FROM mcp_servers WHERE id = $1::text) AS taken FROM cap LEFT JOIN s ON true`;

/** What `create` found: the new server, or why there is none. */
export type CreatedServer = { server: McpServer } | { refused: 'exists' | 'cap' };

function toMcpServer(row: McpServerRow): McpServer {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    transport: row.transport,
    headers: Object.fromEntries(row.header_names.map((name) => [name, MASK])),
    // Rows written before a setting existed show (and use) its default.
    healthCheck: { ...HEALTH_CHECK_DEFAULTS, ...row.health_check },
    enabled: row.enabled,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** Every MCP server query; each takes the caller's EntityManager (and so its transaction). */
@Injectable()
export class McpServerRepository {
  /** `s.url` is the masked URL; `urlSecret` the sealed whole URL (null: no query string). */
  /**
   * Creates the server and appends its `mcp_server.created` event (actor `actor`) in one
   * statement, unless the registry holds `limit` servers already. A duplicate id raises
   * PostgreSQL's unique violation, as an INSERT does.
   */
  async create(run: Statement, s: NewMcpServer, headers: SealedHeaders, urlSecret: string | null, actor: string, limit: number): Promise<CreatedServer> {
    const [row] = await run<McpServerRow & { taken: boolean }>('registry.mcp-server.create', CREATE, [
      s.id,
      s.name,
      s.url,
      s.transport,
      headers.secret,
      headers.names,
      JSON.stringify(s.healthCheck),
      s.enabled,
      urlSecret,
      actor,
      limit,
    ]);
    if (!row) throw new Error('registry_counts has no row for mcp_servers');
    if (row.id === null) return { refused: row.taken ? 'exists' : 'cap' };
    return { server: toMcpServer(row) };
  }

  /** The masked URL and its sealed whole; undefined when the server does not exist. */
  async findUrl(m: EntityManager, id: string): Promise<{ url: string; secret: string | null } | undefined> {
    const row = await one<{ url: string; url_secret: string | null }>(m, 'SELECT url, url_secret FROM mcp_servers WHERE id = $1', [id]);
    return row ? { url: row.url, secret: row.url_secret } : undefined;
  }

  /** Rows whose URL has a query string that was stored before URLs were sealed (first start after the upgrade). */
  async findUnsealedUrls(m: EntityManager): Promise<{ id: string; url: string }[]> {
    return rows(m, "SELECT id, url FROM mcp_servers WHERE url_secret IS NULL AND position('?' in url) > 0 FOR UPDATE");
  }

  async setUrl(m: EntityManager, id: string, masked: string, secret: string | null): Promise<void> {
    await sql(m, 'UPDATE mcp_servers SET url = $2, url_secret = $3 WHERE id = $1', [id, masked, secret]);
  }

  async find(m: EntityManager, id: string, lock = false): Promise<McpServer | undefined> {
    const row = await one<McpServerRow>(m, `SELECT ${COLUMNS} FROM mcp_servers WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    return row ? toMcpServer(row) : undefined;
  }

  /** The sealed header set; undefined when the server does not exist. */
  async findHeaders(m: EntityManager, id: string): Promise<SealedHeaders | undefined> {
    const row = await one<{ headers_secret: string | null; header_names: string[] }>(m, 'SELECT headers_secret, header_names FROM mcp_servers WHERE id = $1', [
      id,
    ]);
    return row ? { secret: row.headers_secret, names: row.header_names } : undefined;
  }

  async list(m: EntityManager, limit: number, after?: string, enabled?: boolean): Promise<McpServer[]> {
    const found = await rows<McpServerRow>(
      m,
      `SELECT ${COLUMNS} FROM mcp_servers WHERE ($1::text IS NULL OR id > $1) AND ($2::boolean IS NULL OR enabled = $2)
       ORDER BY id LIMIT $3`,
      [after ?? null, enabled ?? null, limit],
    );
    return found.map(toMcpServer);
  }

  /**
   * Writes the fields of `next` (its `url` masked), the header set when
   * `headers` is given, and the sealed URL when `urlSecret` is given (null: none).
   */
  async update(m: EntityManager, next: McpServer, headers?: SealedHeaders, urlSecret?: string | null): Promise<McpServer> {
    const row = await one<McpServerRow>(
      m,
      `UPDATE mcp_servers SET name = $2, url = $3, transport = $4, health_check = $5, enabled = $6,
              headers_secret = CASE WHEN $7 THEN $8 ELSE headers_secret END,
              header_names = CASE WHEN $7 THEN $9::text[] ELSE header_names END,
              url_secret = CASE WHEN $10 THEN $11 ELSE url_secret END,
              version = version + 1, updated_at = now()
        WHERE id = $1 RETURNING ${COLUMNS}`,
      [
        next.id,
        next.name,
        next.url,
        next.transport,
        JSON.stringify(next.healthCheck),
        next.enabled,
        headers !== undefined,
        headers?.secret ?? null,
        headers?.names ?? [],
        urlSecret !== undefined,
        urlSecret ?? null,
      ],
    );
    return toMcpServer(row!);
  }

  async delete(m: EntityManager, id: string): Promise<number> {
    return (await sql(m, 'DELETE FROM mcp_servers WHERE id = $1', [id])).count;
  }
}
