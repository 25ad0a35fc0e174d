import type { ChangeMessage } from '@protocol';
import { ApiError, type Api } from './api';
import type { Agent, Discovery, McpServer, Prompt, TrustRule } from './types';

/**
 * The registry as the GUI holds it: one map per table, updated row by row.
 * A change event names one row; the store fetches only that row (or drops it
 * on `*.deleted`). Whole snapshots (`GET /discovery`: at load, while polling,
 * after a reset) are merged with care: a row whose latest event is newer than
 * the snapshot keeps what the event brought.
 */

export type Kind = 'agent' | 'prompt' | 'mcp_server' | 'trust_rule';

export interface HealthState {
  status?: string;
  circuit?: string;
}

export interface RegistryState {
  loaded: boolean;
  /** The snapshot cursor the tables were last loaded from (not the live position). */
  snapshotCursor: number;
  agents: ReadonlyMap<string, Agent>;
  /** Key `<agentId>/<version>`. */
  prompts: ReadonlyMap<string, Prompt>;
  mcpServers: ReadonlyMap<string, McpServer>;
  trustRules: ReadonlyMap<string, TrustRule>;
  /** Health facts from `mcp_server.health_changed` / `circuit_changed` events, by server id. */
  health: ReadonlyMap<string, HealthState>;
  /** Rows changed in the last moments (`<kind>:<key>`), for a highlight. */
  flashing: ReadonlySet<string>;
  trustRulesReadable: boolean;
}

type Listener = () => void;

const FLASH_MS = 2000;

export const promptKey = (agentId: string, version: number) => `${agentId}/${version}`;

export class RegistryStore {
  private state: RegistryState = {
    loaded: false,
    snapshotCursor: 0,
    agents: new Map(),
    prompts: new Map(),
    mcpServers: new Map(),
    trustRules: new Map(),
    health: new Map(),
    flashing: new Set(),
    trustRulesReadable: false,
  };
  private listeners = new Set<Listener>();
  /** Latest event seq seen per row (`<kind>:<key>`). */
  private rowSeq = new Map<string, number>();
  /** Bumped at each event of a row: a fetch answers only if no newer event came meanwhile. */
  private rowGen = new Map<string, number>();
  private flashTimers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly api: Api) {}

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): RegistryState => this.state;

  private set(patch: Partial<RegistryState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  /** Loads everything from one consistent snapshot (and the servers' health); returns its cursor. */
  async load(): Promise<number> {
    const [snapshot, health] = await Promise.all([this.api.discovery(), this.loadHealth()]);
    this.applySnapshot(snapshot);
    if (health) this.set({ health });
    return snapshot.cursor;
  }

  /** `GET /health` (the health module): status and circuit per server; undefined without it. */
  private async loadHealth(): Promise<Map<string, HealthState> | undefined> {
    try {
      const overview = await this.api.get<{ items?: { id: string; status?: string; circuit?: { state?: string } | string }[] }>('/health');
      const health = new Map<string, HealthState>();
      for (const item of overview.items ?? []) {
        health.set(item.id, { status: item.status, circuit: typeof item.circuit === 'string' ? item.circuit : item.circuit?.state });
      }
      return health;
    } catch {
      return undefined;
    }
  }

  applySnapshot(s: Discovery): void {
    const cursor = s.cursor;
    const merge = <T>(kind: Kind, current: ReadonlyMap<string, T>, rows: T[], key: (row: T) => string): Map<string, T> => {
      const next = new Map<string, T>();
      for (const row of rows) next.set(key(row), row);
      // Rows whose own latest event is newer than the snapshot keep their current state (present or gone).
      for (const [rk, seq] of this.rowSeq) {
        if (seq <= cursor || !rk.startsWith(`${kind}:`)) continue;
        const k = rk.slice(kind.length + 1);
        const mine = current.get(k);
        if (mine === undefined) next.delete(k);
        else next.set(k, mine);
      }
      return next;
    };
    const st = this.state;
    this.set({
      loaded: true,
      snapshotCursor: Math.max(cursor, st.snapshotCursor),
      agents: merge('agent', st.agents, s.agents, (a) => a.id),
      prompts: merge('prompt', st.prompts, s.prompts, (p) => promptKey(p.agentId, p.version)),
      mcpServers: merge('mcp_server', st.mcpServers, s.mcp_servers, (m) => m.id),
      trustRules: s.trust_rules ? merge('trust_rule', st.trustRules, s.trust_rules, (r) => r.id) : new Map(),
      trustRulesReadable: s.trust_rules !== undefined,
    });
    for (const [rk, seq] of this.rowSeq) if (seq <= cursor) this.rowSeq.delete(rk);
  }

  /** Applies one change: fetch the row it names (or remove it). */
  handle(change: ChangeMessage): void {
    switch (change.resource) {
      case 'agent':
        if (change.action === 'deleted') {
          this.bump('agent', change.id, change.seq);
          this.remove('agent', change.id);
          // Its prompts go with it (only agent.deleted is emitted for them).
          const prompts = new Map(this.state.prompts);
          for (const [k, p] of prompts) if (p.agentId === change.id) prompts.delete(k);
          this.set({ prompts });
        } else this.refetch('agent', change.id, change.seq);
        break;
      case 'prompt': {
        const data = change.data ?? {};
        const slash = change.id.lastIndexOf('/');
        const agentId = typeof data.agentId === 'string' ? data.agentId : change.id.slice(0, slash);
        const version = typeof data.version === 'number' ? data.version : Number(change.id.slice(slash + 1));
        const key = promptKey(agentId, version);
        if (change.action === 'deleted') {
          this.bump('prompt', key, change.seq);
          this.remove('prompt', key);
          break;
        }
        if (change.action === 'activated') this.markActive(agentId, version);
        this.refetch('prompt', key, change.seq);
        // The agent's active version moves with an activation (or a prompt created active).
        this.refetch('agent', agentId, change.seq);
        break;
      }
      case 'mcp_server':
        if (change.action === 'deleted') {
          this.bump('mcp_server', change.id, change.seq);
          this.remove('mcp_server', change.id);
        } else if (change.action === 'health_changed' || change.action === 'circuit_changed') {
          // Health lives beside the row, not in it: the event says it all.
          this.applyHealth(change);
          this.flash(`mcp_server:${change.id}`);
        } else this.refetch('mcp_server', change.id, change.seq);
        break;
      case 'trust_rule':
        if (!this.state.trustRulesReadable) break;
        if (change.action === 'deleted') {
          this.bump('trust_rule', change.id, change.seq);
          this.remove('trust_rule', change.id);
        } else this.refetch('trust_rule', change.id, change.seq);
        break;
      default:
        break;
    }
  }

  /** After a write of our own: put the server's answer in at once (the event that follows refetches anyway). */
  put(kind: Kind, key: string, row: Agent | Prompt | McpServer | TrustRule): void {
    this.replaceRow(kind, key, row);
  }

  /** After a delete of our own: gone at once (its event, when it comes, finds nothing to remove). */
  drop(kind: Kind, key: string): void {
    this.remove(kind, key);
  }

  /** Fetches one row now (the Reload of a 412 conflict). */
  async reload(kind: Kind, key: string): Promise<void> {
    const gen = this.bump(kind, key, 0);
    await this.fetchRow(kind, key, gen);
  }

  private bump(kind: Kind, key: string, seq: number): number {
    const rk = `${kind}:${key}`;
    const gen = (this.rowGen.get(rk) ?? 0) + 1;
    this.rowGen.set(rk, gen);
    if (seq > (this.rowSeq.get(rk) ?? 0)) this.rowSeq.set(rk, seq);
    return gen;
  }

  private refetch(kind: Kind, key: string, seq: number): void {
    const gen = this.bump(kind, key, seq);
    void this.fetchRow(kind, key, gen);
  }

  private async fetchRow(kind: Kind, key: string, gen: number): Promise<void> {
    const rk = `${kind}:${key}`;
    let row: Agent | Prompt | McpServer | TrustRule | undefined;
    try {
      row = await this.api.get(rowPath(kind, key));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) {
        // Not fatal: the next snapshot (poll, reset) or event corrects it.
        return;
      }
      row = undefined;
    }
    if (this.rowGen.get(rk) !== gen) return; // a newer event of this row is being handled
    if (row === undefined) this.remove(kind, key);
    else this.replaceRow(kind, key, row);
  }

  private replaceRow(kind: Kind, key: string, row: Agent | Prompt | McpServer | TrustRule): void {
    switch (kind) {
      case 'agent':
        this.set({ agents: withRow(this.state.agents, key, row as Agent) });
        break;
      case 'prompt': {
        const prompt = row as Prompt;
        let prompts = withRow(this.state.prompts, key, prompt);
        if (prompt.active) prompts = activeOnly(prompts, prompt.agentId, prompt.version);
        this.set({ prompts });
        break;
      }
      case 'mcp_server':
        this.set({ mcpServers: withRow(this.state.mcpServers, key, row as McpServer) });
        break;
      case 'trust_rule':
        this.set({ trustRules: withRow(this.state.trustRules, key, row as TrustRule) });
        break;
    }
    this.flash(`${kind}:${key}`);
  }

  private remove(kind: Kind, key: string): void {
    const without = <T>(map: ReadonlyMap<string, T>) => {
      const next = new Map(map);
      next.delete(key);
      return next;
    };
    if (kind === 'agent') this.set({ agents: without(this.state.agents) });
    if (kind === 'prompt') this.set({ prompts: without(this.state.prompts) });
    if (kind === 'mcp_server') this.set({ mcpServers: without(this.state.mcpServers) });
    if (kind === 'trust_rule') this.set({ trustRules: without(this.state.trustRules) });
  }

  private markActive(agentId: string, version: number): void {
    this.set({ prompts: activeOnly(this.state.prompts, agentId, version) });
  }

  private applyHealth(change: ChangeMessage): void {
    const data = change.data ?? {};
    const current = this.state.health.get(change.id) ?? {};
    const next: HealthState = { ...current };
    if (change.action === 'health_changed') next.status = str(data.status) ?? str(data.health) ?? str(data.to) ?? current.status;
    else next.circuit = str(data.state) ?? str(data.circuit) ?? str(data.to) ?? current.circuit;
    const health = new Map(this.state.health);
    health.set(change.id, next);
    this.set({ health });
  }

  private flash(rk: string): void {
    const flashing = new Set(this.state.flashing);
    flashing.add(rk);
    this.set({ flashing });
    clearTimeout(this.flashTimers.get(rk));
    this.flashTimers.set(
      rk,
      setTimeout(() => {
        this.flashTimers.delete(rk);
        const next = new Set(this.state.flashing);
        next.delete(rk);
        this.set({ flashing: next });
      }, FLASH_MS),
    );
  }
}

function withRow<T>(map: ReadonlyMap<string, T>, key: string, row: T): Map<string, T> {
  const next = new Map(map);
  next.set(key, row);
  return next;
}

function activeOnly(prompts: ReadonlyMap<string, Prompt>, agentId: string, version: number): Map<string, Prompt> {
  const next = new Map(prompts);
  for (const [k, p] of next) {
    if (p.agentId !== agentId) continue;
    const active = p.version === version;
    if (p.active !== active) next.set(k, { ...p, active });
  }
  return next;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function rowPath(kind: Kind, key: string): string {
  switch (kind) {
    case 'agent':
      return `/agents/${encodeURIComponent(key)}`;
    case 'prompt': {
      const slash = key.lastIndexOf('/');
      return `/agents/${encodeURIComponent(key.slice(0, slash))}/prompts/${key.slice(slash + 1)}`;
    }
    case 'mcp_server':
      return `/mcp-servers/${encodeURIComponent(key)}`;
    case 'trust_rule':
      return `/trust-rules/${encodeURIComponent(key)}`;
  }
}
