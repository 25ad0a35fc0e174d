import type { JSONRPCNotification } from '@modelcontextprotocol/sdk/types.js';
import type { BackendConnector, BackendSession } from './backend-connector.js';
import { GatewayError } from './gateway-errors.js';

/**
 * The backend MCP sessions of one client session (a streaming session on
 * this replica, or a `/mcp` session), by server: opened on first use and
 * reused; an open that failed, or a backend session that closed, is
 * forgotten so the next use opens a new one. Closed with its client session.
 */
export class BackendPool {
  private readonly open = new Map<string, Promise<BackendSession>>();
  private closed = false;

  constructor(
    private readonly connector: BackendConnector,
    private readonly timeoutMs: number,
    private readonly onNotification: (serverId: string, notification: JSONRPCNotification) => void,
  ) {}

  /** Backend sessions opened or opening. */
  get size(): number {
    return this.open.size;
  }

  get(serverId: string, signal?: AbortSignal): Promise<BackendSession> {
    if (this.closed) return Promise.reject(new GatewayError('cancelled', 'the session is closed'));
    let session = this.open.get(serverId);
    if (!session) {
      session = this.connector.open(serverId, {
        timeoutMs: this.timeoutMs,
        onNotification: (n) => this.onNotification(serverId, n),
        ...(signal ? { signal } : {}),
      });
      this.open.set(serverId, session);
      session.catch(() => this.open.get(serverId) === session && this.open.delete(serverId));
    }
    return session.then((s) => {
      if (!s.closed) return s;
      if (this.open.get(serverId) === session) this.open.delete(serverId);
      return this.get(serverId, signal);
    });
  }

  /** A failed backend session is dropped so the next call opens a new one. */
  drop(serverId: string): void {
    const session = this.open.get(serverId);
    this.open.delete(serverId);
    void session?.then((s) => s.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map((p) => p.then((s) => s.close())));
  }
}
