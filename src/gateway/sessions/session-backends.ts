import type { JSONRPCNotification } from '@modelcontextprotocol/sdk/types.js';
import type { BackendConnector, BackendSession } from '../core/backend-connector.js';
import { BackendPool } from '../core/backend-pool.js';
import type { SessionRecord } from './session-store.js';

interface Held {
  readonly backends: BackendPool;
  /** Calls in flight for this session on this replica (aborted when it closes). */
  readonly inflight: Map<string, { controller: AbortController; clientId: string | number }>;
  lastUsed: number;
  /** The session's fixed facts (owner, servers, deferred), remembered while this replica holds it. */
  record?: SessionRecord;
}

/**
 * The backend MCP sessions this replica holds for streaming sessions: opened
 * on first use (any replica may serve a session's requests; the Redis record
 * is the truth, backend sessions only an optimisation), kept while used,
 * closed when the session closes or expires, or after `idleMs` unused.
 */
export class SessionBackends {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly connector: BackendConnector,
    private readonly idleMs: number,
    /** How long opening (initializing) a backend session may take. */
    private readonly openTimeoutMs: number,
    private readonly onNotification: (sessionId: string, serverId: string, n: JSONRPCNotification) => void,
  ) {}

  private entry(sessionId: string): Held {
    let h = this.held.get(sessionId);
    if (!h) {
      const backends = new BackendPool(this.connector, this.openTimeoutMs, (serverId, n) => this.onNotification(sessionId, serverId, n));
      h = { backends, inflight: new Map(), lastUsed: Date.now() };
      this.held.set(sessionId, h);
    }
    h.lastUsed = Date.now();
    return h;
  }

  /** The session's backend for `serverId`, opened (initialized) on first use; a failed open is forgotten so the next use retries. */
  get(sessionId: string, serverId: string): Promise<BackendSession> {
    return this.entry(sessionId).backends.get(serverId);
  }

  /** Remembers a session's fixed facts while this replica holds it (its next request here need not wait for Redis to route). */
  remember(record: SessionRecord): void {
    this.entry(record.id).record = record;
  }

  /** The remembered facts of a session this replica holds, with its number of calls in flight here. */
  known(sessionId: string): { record: SessionRecord; inflight: number } | undefined {
    const h = this.held.get(sessionId);
    return h?.record ? { record: h.record, inflight: h.inflight.size } : undefined;
  }

  /** Registers a call in flight; returns its signal, the function that aborts it and the one that ends the registration. */
  track(sessionId: string, requestId: string, clientId: string | number): { signal: AbortSignal; abort: (reason: string) => void; done: () => void } {
    const h = this.entry(sessionId);
    const controller = new AbortController();
    h.inflight.set(requestId, { controller, clientId });
    return {
      signal: controller.signal,
      abort: (reason) => controller.abort(new Error(reason)),
      done: () => {
        h.inflight.delete(requestId);
        h.lastUsed = Date.now();
      },
    };
  }

  /** Cancels the call with this client JSON-RPC id (the client sent notifications/cancelled); whether one was running here. */
  cancel(sessionId: string, clientId: string | number, reason: string): boolean {
    const h = this.held.get(sessionId);
    if (!h) return false;
    let found = false;
    for (const call of h.inflight.values()) {
      if (call.clientId === clientId) {
        call.controller.abort(new Error(reason));
        found = true;
      }
    }
    return found;
  }

  /** Aborts the session's calls on this replica and closes its backend sessions. */
  async close(sessionId: string, reason: string): Promise<void> {
    const h = this.held.get(sessionId);
    if (!h) return;
    this.held.delete(sessionId);
    for (const call of h.inflight.values()) call.controller.abort(new Error(reason));
    await h.backends.close();
  }

  /** Sessions this replica holds something for. */
  sessionIds(): string[] {
    return [...this.held.keys()];
  }

  /** Closes what has not been used for `idleMs` (and has nothing in flight). */
  async sweepIdle(): Promise<void> {
    const now = Date.now();
    const idle = [...this.held.entries()].filter(([, h]) => h.inflight.size === 0 && now - h.lastUsed > this.idleMs).map(([id]) => id);
    await Promise.all(idle.map((id) => this.close(id, 'idle')));
  }

  get backendCount(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.backends.size;
    return n;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.sessionIds().map((id) => this.close(id, 'shutdown')));
  }
}
