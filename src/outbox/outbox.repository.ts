import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DataSource } from 'typeorm';
import { one, rows } from '../database/sql.js';
import { type ChangeEvent, type EventType, type NewEvent, splitType } from '../events/event-catalog.js';

interface OutboxRow {
  seq: number;
  type: EventType;
  resource_id: string;
  version: number | null;
  actor: string | null;
  data: Record<string, unknown> | null;
  created_at: Date;
}

export interface OutboxHead {
  /** The last seq handed out by the sequencer (0 before the first event). */
  lastSeq: number;
  /** Events with seq <= prunedThrough were removed by retention. */
  prunedThrough: number;
  /** Committed events still waiting for their seq. */
  pending: boolean;
}

export function toChangeEvent(row: OutboxRow): ChangeEvent {
  const { resource, action } = splitType(row.type);
  const event: {
    -readonly [K in keyof ChangeEvent]: ChangeEvent[K];
  } = { seq: row.seq, type: row.type, resource, id: row.resource_id, action, ts: row.created_at.toISOString() };
  if (row.version !== null) event.version = row.version;
  if (row.actor !== null) event.actor = row.actor;
  if (row.data !== null) event.data = row.data;
  return event;
}

const COLUMNS = 'seq, type, resource_id, version, actor, data, created_at';

/**
 * The head of every outbox append: `append` below, and the one-statement
 * writes of the registry's repositories, which put it in a data-modifying CTE
 * beside their row's INSERT (`… o AS (${OUTBOX_INSERT} SELECT 'agent.created',
 * a.id, a.version, $n, NULL FROM a) …`), so the row and its event commit
 * together (DESIGN invariant 1).
 */
export const OUTBOX_INSERT = 'INSERT INTO outbox (type, resource_id, version, actor, data)';

/** Every query on the outbox table. Writes take the caller's transaction. */
@Injectable()
export class OutboxRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Appends an event inside the caller's transaction: it commits or rolls back with the change. */
  async append(manager: EntityManager, event: NewEvent): Promise<void> {
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('outbox append must run inside the mutation transaction');
    }
    await manager.query(`${OUTBOX_INSERT} VALUES ($1, $2, $3, $4, $5)`, [
      event.type,
      event.id,
      event.version ?? null,
      event.actor ?? null,
      event.data === undefined ? null : JSON.stringify(event.data),
    ]);
  }

  async head(manager: EntityManager = this.dataSource.manager): Promise<OutboxHead> {
    const row = await one<{ last_seq: number; pruned_through: number; pending: boolean }>(
      manager,
      'SELECT last_seq, pruned_through, EXISTS (SELECT 1 FROM outbox WHERE seq IS NULL) AS pending FROM outbox_head WHERE id = 1',
    );
    return { lastSeq: row?.last_seq ?? 0, prunedThrough: row?.pruned_through ?? 0, pending: row?.pending ?? false };
  }

  /** Sequenced events with `after < seq <= upTo`, in seq order, at most `limit`. */
  async readRange(after: number, upTo: number, limit: number, manager: EntityManager = this.dataSource.manager): Promise<ChangeEvent[]> {
    const found = await rows<OutboxRow>(manager, `SELECT ${COLUMNS} FROM outbox WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`, [after, upTo, limit]);
    return found.map(toChangeEvent);
  }

  /**
   * A page of the REST feed and the head it is consistent with, read in one
   * snapshot (REPEATABLE READ): if `after >= head.prunedThrough` in that
   * snapshot, retention had removed nothing the page should hold, so the page
   * is exactly the events after `after` (of those types), with no hole. Two
   * separate reads could see retention prune between them and skip events.
   */
  async readFeed(after: number, limit: number, types?: readonly string[]): Promise<{ head: OutboxHead; items: ChangeEvent[] }> {
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const head = await this.head(manager);
      if (after < head.prunedThrough) return { head, items: [] };
      const found = types
        ? await rows<OutboxRow>(manager, `SELECT ${COLUMNS} FROM outbox WHERE seq > $1 AND type = ANY($2) ORDER BY seq LIMIT $3`, [after, types, limit])
        : await rows<OutboxRow>(manager, `SELECT ${COLUMNS} FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, [after, limit]);
      return { head, items: found.map(toChangeEvent) };
    });
  }

  /** The newest `count` sequenced events, oldest first (to warm a replica's window). */
  async readLatest(count: number): Promise<ChangeEvent[]> {
    const found = await rows<OutboxRow>(
      this.dataSource.manager,
      `SELECT * FROM (SELECT ${COLUMNS} FROM outbox WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT $1) t ORDER BY seq`,
      [count],
    );
    return found.map(toChangeEvent);
  }
}

export const OUTBOX_COLUMNS = COLUMNS;
export type { OutboxRow };
