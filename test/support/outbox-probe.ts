import type pg from 'pg';

/** An outbox row as mutation tests check it. */
export interface OutboxEvent {
  type: string;
  resource_id: string;
  version: number | null;
  actor: string | null;
  data: Record<string, unknown> | null;
}

/**
 * Reads the outbox of a suite's database: `mark()` is the newest row id, and
 * `eventsSince(mark)` the events the mutations after it wrote (in order).
 */
export function outboxProbe(db: () => pg.Client) {
  return {
    mark: async (): Promise<number> => Number((await db().query('SELECT coalesce(max(id), 0) AS id FROM outbox')).rows[0].id),
    eventsSince: async (id: number): Promise<OutboxEvent[]> =>
      (await db().query('SELECT type, resource_id, version, actor, data FROM outbox WHERE id > $1 ORDER BY id', [id])).rows,
  };
}
