import { Injectable } from '@nestjs/common';
import type pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import type { NewEvent } from '../events/event-catalog.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';

/** One registry write in progress: its transaction, and the outbox append inside it. */
export interface RegistryWrite {
  readonly m: EntityManager;
  /** Appends the change's event in this transaction: it commits or rolls back with the rows. */
  readonly append: (event: NewEvent) => Promise<void>;
}

/**
 * Runs one SQL statement on the database pool directly (no TypeORM
 * QueryRunner, no BEGIN/COMMIT round trips): a single statement is a
 * transaction of its own, so a write whose row, outbox row and cap check are
 * one statement (data-modifying CTEs) commits all of them or none. `name`
 * makes it a prepared statement, parsed once per pooled connection.
 */
export type Statement = <T>(name: string, text: string, values: unknown[]) => Promise<T[]>;

/** What a mutation of an existing row returns: its result, and the event to append (none for a no-op). */
export interface Mutation<R> {
  readonly result: R;
  readonly event?: NewEvent;
}

/** The row a `change` works on. */
export interface ChangeTarget<T> {
  /** How errors name it: `agent`, `MCP server`, … */
  readonly what: string;
  readonly id: string;
  /** The version the caller says it changes (If-Match / body `version`); undefined: any. */
  readonly expected: number | undefined;
  /** Reads the row FOR UPDATE in the given transaction; undefined when it does not exist. */
  lock(m: EntityManager): Promise<T | undefined>;
}

/**
 * The one write path of the registry (agents, prompts, MCP servers, trust
 * rules): every mutation runs in one transaction that also appends its outbox
 * event (DESIGN invariant 1: no event without its change, no change without
 * its event). `change` is the common shape of updates and deletes: lock the
 * row, check the version, mutate, append the event.
 */
@Injectable()
export class RegistryWriter {
  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
  ) {}

  /** The hot write path's one round trip (see `Statement`). */
  readonly statement: Statement = async <T>(name: string, text: string, values: unknown[]): Promise<T[]> => {
    const pool = (this.dataSource.driver as unknown as { master: pg.Pool }).master;
    return (await pool.query<T & pg.QueryResultRow>({ name, text, values })).rows;
  };

  /** Runs `work` in one transaction with the outbox append at hand. */
  write<R>(work: (w: RegistryWrite) => Promise<R>): Promise<R> {
    return this.dataSource.transaction((m) => work({ m, append: (event) => this.outbox.append(m, event) }));
  }

  /**
   * Changes one existing row: locks it, 404 when it does not exist, 412 when
   * `expected` is not its current version; then `mutate` and, if it returns
   * one, the event, in the same transaction.
   */
  change<T extends { readonly version: number }, R>(target: ChangeTarget<T>, mutate: (current: T, m: EntityManager) => Promise<Mutation<R>>): Promise<R> {
    return this.write(async (w) => {
      const current = await target.lock(w.m);
      if (!current) throw DomainError.notFound(target.what, target.id);
      if (target.expected !== undefined && target.expected !== current.version) throw DomainError.stale(target.what, target.id, current.version);
      const { result, event } = await mutate(current, w.m);
      if (event) await w.append(event);
      return result;
    });
  }
}
