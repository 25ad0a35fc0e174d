import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { isReferencedError, one, rows, sql } from '../database/sql.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';
import type { BreakerState, BreakerTransition, CircuitState, HealthRecord, HealthStatus } from './health.types.js';

interface HealthRow {
  server_id: string;
  status: HealthStatus;
  status_reason: string | null;
  status_since: Date;
  latency_ms: number | null;
  tool_count: number | null;
  tools_hash: string | null;
  circuit: CircuitState;
  circuit_reason: string | null;
  circuit_since: Date;
  circuit_at: string;
}

const COLUMNS = 'server_id, status, status_reason, status_since, latency_ms, tool_count, tools_hash, circuit, circuit_reason, circuit_since, circuit_at';

function toRecord(row: HealthRow): HealthRecord {
  return {
    serverId: row.server_id,
    status: row.status,
    statusReason: row.status_reason,
    statusSince: row.status_since.toISOString(),
    latencyMs: row.latency_ms,
    toolCount: row.tool_count,
    toolsHash: row.tools_hash,
    circuit: row.circuit,
    circuitReason: row.circuit_reason,
    circuitSince: row.circuit_since.toISOString(),
    circuitAt: Number(row.circuit_at),
  };
}

/** A status change to record, from the owning replica's tracker. */
export interface StatusWrite {
  readonly from: HealthStatus;
  readonly to: HealthStatus;
  readonly reason: string;
  readonly latencyMs: number;
  readonly toolCount?: number;
  readonly toolsHash?: string;
  readonly actor: string;
}

/**
 * The durable health record (`mcp_server_health`) and its outbox events:
 * every status or circuit change is one transaction that updates the row and
 * appends the event (DESIGN invariant 1), under the row's lock, so replicas
 * that race on one server (a probe owner and a gateway, or two owners during
 * a Redis partition) record each change once and in order.
 */
@Injectable()
export class HealthRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
  ) {}

  async find(serverIds: readonly string[]): Promise<Map<string, HealthRecord>> {
    if (serverIds.length === 0) return new Map();
    const found = await rows<HealthRow>(this.dataSource.manager, `SELECT ${COLUMNS} FROM mcp_server_health WHERE server_id = ANY($1)`, [serverIds]);
    return new Map(found.map((r) => [r.server_id, toRecord(r)]));
  }

  async findAll(): Promise<Map<string, HealthRecord>> {
    const found = await rows<HealthRow>(this.dataSource.manager, `SELECT ${COLUMNS} FROM mcp_server_health`);
    return new Map(found.map((r) => [r.server_id, toRecord(r)]));
  }

  /** Locks the server's row, creating it first; undefined when the server no longer exists. */
  private async lock(m: EntityManager, serverId: string): Promise<HealthRecord | undefined> {
    try {
      await sql(m, 'INSERT INTO mcp_server_health (server_id) SELECT id FROM mcp_servers WHERE id = $1 ON CONFLICT (server_id) DO NOTHING', [serverId]);
    } catch (error) {
      if (isReferencedError(error)) return undefined;
      throw error;
    }
    const row = await one<HealthRow>(m, `SELECT ${COLUMNS} FROM mcp_server_health WHERE server_id = $1 FOR UPDATE`, [serverId]);
    return row ? toRecord(row) : undefined;
  }

  /**
   * Records a status change (and the tool list when it changed) with its
   * `mcp_server.health_changed` event. Nothing is written when the stored
   * record already says the same (another replica recorded it). Returns
   * whether an event was appended.
   */
  async recordStatus(serverId: string, w: StatusWrite): Promise<boolean> {
    return this.dataSource.transaction(async (m) => {
      const current = await this.lock(m, serverId);
      if (!current) return false;
      const toolsChanged = w.toolsHash !== undefined && w.toolsHash !== current.toolsHash;
      if (current.status === w.to && !toolsChanged) return false;
      await sql(
        m,
        `UPDATE mcp_server_health SET status = $2, status_reason = $3, latency_ms = $4,
                status_since = CASE WHEN status = $2 THEN status_since ELSE now() END,
                tool_count = COALESCE($5, tool_count), tools_hash = COALESCE($6, tools_hash), updated_at = now()
          WHERE server_id = $1`,
        [serverId, w.to, w.reason, w.latencyMs, w.toolCount ?? null, w.toolsHash ?? null],
      );
      const data: Record<string, unknown> = { from: current.status, to: w.to, reason: w.reason, latencyMs: w.latencyMs };
      if (w.toolsHash !== undefined) {
        data.tools = {
          count: w.toolCount,
          hash: w.toolsHash,
          ...(toolsChanged && current.toolsHash !== null ? { previousHash: current.toolsHash, changed: true } : {}),
        };
      }
      await this.outbox.append(m, { type: 'mcp_server.health_changed', id: serverId, actor: w.actor, data });
      return true;
    });
  }

  /**
   * Brings the recorded circuit up to the breaker: one
   * `mcp_server.circuit_changed` event per logged transition newer than the
   * record, oldest first; then, if the record still differs from the
   * breaker's current state (transitions lost with a Redis restart, or made in
   * a replica's memory while Redis was away), one event that says so. The
   * breaker is read (`readBreaker`) only once the row is locked, so replicas
   * syncing the same server at once cannot record a stale view. Returns the
   * events appended.
   */
  async syncCircuit(serverId: string, readBreaker: () => Promise<{ log: BreakerTransition[]; current: BreakerState }>, actor: string): Promise<number> {
    return this.dataSource.transaction(async (m) => {
      const record = await this.lock(m, serverId);
      if (!record) return 0;
      const { log, current } = await readBreaker();
      let state = record.circuit;
      let at = record.circuitAt;
      let reason = record.circuitReason;
      let appended = 0;
      const append = async (to: CircuitState, why: string, data: Record<string, unknown>) => {
        await this.outbox.append(m, { type: 'mcp_server.circuit_changed', id: serverId, actor, data: { from: state, to, reason: why, ...data } });
        state = to;
        reason = why;
        appended++;
      };
      for (const t of log) {
        if (t.at <= at) continue;
        await append(t.to, t.reason, t.to === 'open' ? { failures: t.failures, coolDownMs: t.coolDownMs } : { failures: t.failures });
        at = t.at;
      }
      if (state !== current.state) await append(current.state, 'resynchronized with the shared breaker state', { failures: current.failures });
      if (appended > 0) {
        await sql(
          m,
          `UPDATE mcp_server_health SET circuit = $2, circuit_reason = $3, circuit_at = $4,
                  circuit_since = CASE WHEN circuit = $2 THEN circuit_since ELSE now() END, updated_at = now()
            WHERE server_id = $1`,
          [serverId, state, reason, at],
        );
      }
      return appended;
    });
  }
}
