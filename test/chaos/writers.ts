// Writers of the chaos suite: concurrent REST clients through the balancer
// that create, update and delete agents, prompts, MCP servers and trust rules
// at a steady pace. Every 2xx is recorded with the event it must have produced.
import { sleep } from '../support/timing.js';

/** An acknowledged write: the event (type, resource id, version) that must be in the outbox. */
export interface AckedWrite {
  writer: number;
  op: string;
  type: string;
  id: string;
  version?: number;
  wall: number;
}

export interface FailedWrite {
  writer: number;
  op: string;
  status: number;
  detail: string;
  wall: number;
}

interface AgentState {
  version: number;
  prompts: number[];
  active?: number;
  rules: number;
}

export class Writer {
  readonly acked: AckedWrite[] = [];
  readonly failed: FailedWrite[] = [];
  ops = 0;
  private readonly agents = new Map<string, AgentState>();
  private readonly servers = new Map<string, number>();
  private n = 0;
  private stopped = false;

  constructor(
    readonly index: number,
    private readonly baseUrl: string,
    private readonly apiKey: string,
    /** Writes per second this writer aims at. */
    private readonly rate: number,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  /** Writes until `until` (Date.now()) or stop(). */
  async run(until: number): Promise<void> {
    const interval = 1000 / this.rate;
    // Spread the writers' phases.
    await sleep(Math.random() * interval);
    while (!this.stopped && Date.now() < until) {
      const t0 = Date.now();
      await this.step();
      this.ops++;
      const wait = interval - (Date.now() - t0);
      if (wait > 0) await sleep(wait);
    }
  }

  private pick<T>(items: T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(Math.random() * items.length)];
  }

  private async step(): Promise<void> {
    const r = Math.random();
    const agentIds = [...this.agents.keys()];
    if (agentIds.length < 3 || r < 0.2) return this.createAgent();
    if (r < 0.45) return this.updateAgent(this.pick(agentIds)!);
    if (r < 0.55) return this.createPrompt(this.pick(agentIds)!);
    if (r < 0.62) return this.activatePrompt(this.pick(agentIds.filter((id) => this.agents.get(id)!.prompts.some((v) => v !== this.agents.get(id)!.active))));
    if (r < 0.72) return this.deleteAgent(this.pick(agentIds.filter((id) => this.agents.get(id)!.rules === 0 && agentIds.length > 3)));
    if (r < 0.8 || this.servers.size === 0) return this.createServer();
    if (r < 0.93) return this.updateServer(this.pick([...this.servers.keys()])!);
    return this.createRule(this.pick(agentIds)!, this.pick([...this.servers.keys()])!);
  }

  private async call(method: string, path: string, body?: unknown, ifMatch?: number): Promise<{ status: number; json: any; text: string; error?: string }> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (ifMatch !== undefined) headers['if-match'] = `"${ifMatch}"`;
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      let json: any;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    } catch (error) {
      return { status: 0, json: undefined, text: '', error: (error as Error).message };
    }
  }

  private ack(op: string, type: string, id: string, version?: number): void {
    this.acked.push({ writer: this.index, op, type, id, version, wall: Date.now() });
  }

  /** A failed or ambiguous write: record it and stop using what it touched (its outcome is unknown). */
  private fail(op: string, res: { status: number; text: string; error?: string; json?: any }, forget: () => void): void {
    this.failed.push({
      writer: this.index,
      op,
      status: res.status,
      detail: res.error ?? (res.json?.code ? `${res.json.code}: ${res.json.detail ?? ''}` : res.text.slice(0, 200)),
      wall: Date.now(),
    });
    forget();
  }

  private async createAgent(): Promise<void> {
    const id = `w${this.index}-a${++this.n}`;
    const res = await this.call('POST', '/api/v1/agents', { id, name: `Agent ${id}`, model: { provider: 'anthropic', name: 'claude' }, tags: ['chaos'] });
    if (res.status === 201) {
      this.agents.set(id, { version: res.json.version, prompts: [], rules: 0 });
      this.ack('create agent', 'agent.created', id, res.json.version);
    } else this.fail('create agent', res, () => undefined);
  }

  private async updateAgent(id: string): Promise<void> {
    const agent = this.agents.get(id)!;
    const res = await this.call('PATCH', `/api/v1/agents/${id}`, { description: `changed ${++this.n}` }, agent.version);
    if (res.status === 200) {
      agent.version = res.json.version;
      this.ack('update agent', 'agent.updated', id, res.json.version);
    } else this.fail('update agent', res, () => this.agents.delete(id));
  }

  private async deleteAgent(id: string | undefined): Promise<void> {
    if (!id) return this.createAgent();
    const agent = this.agents.get(id)!;
    const res = await this.call('DELETE', `/api/v1/agents/${id}`, undefined, agent.version);
    this.agents.delete(id);
    if (res.status === 204) this.ack('delete agent', 'agent.deleted', id, agent.version);
    else this.fail('delete agent', res, () => undefined);
  }

  private async createPrompt(agentId: string): Promise<void> {
    const agent = this.agents.get(agentId)!;
    const res = await this.call('POST', `/api/v1/agents/${agentId}/prompts`, { template: `You are ${agentId}. Handle {{task}}.`, variables: ['task'] });
    if (res.status === 201) {
      const version = res.json.version as number;
      agent.prompts.push(version);
      this.ack('create prompt', 'prompt.created', `${agentId}/${version}`, version);
    } else this.fail('create prompt', res, () => this.agents.delete(agentId));
  }

  private async activatePrompt(agentId: string | undefined): Promise<void> {
    if (!agentId) return this.createPrompt(this.pick([...this.agents.keys()])!);
    const agent = this.agents.get(agentId)!;
    const version = this.pick(agent.prompts.filter((v) => v !== agent.active))!;
    const res = await this.call('POST', `/api/v1/agents/${agentId}/prompts/${version}/activate`);
    if (res.status === 200) {
      agent.active = version;
      this.ack('activate prompt', 'prompt.activated', `${agentId}/${version}`, version);
    } else this.fail('activate prompt', res, () => this.agents.delete(agentId));
  }

  private async createServer(): Promise<void> {
    const id = `w${this.index}-s${++this.n}`;
    // Disabled and on a reserved name: nothing probes it, nothing leaves the machine.
    const res = await this.call('POST', '/api/v1/mcp-servers', { id, name: `Server ${id}`, url: `https://${id}.example.invalid/mcp`, enabled: false });
    if (res.status === 201) {
      this.servers.set(id, res.json.version);
      this.ack('create mcp server', 'mcp_server.created', id, res.json.version);
    } else this.fail('create mcp server', res, () => undefined);
  }

  private async updateServer(id: string): Promise<void> {
    const version = this.servers.get(id)!;
    const res = await this.call('PATCH', `/api/v1/mcp-servers/${id}`, { name: `Server ${id} #${++this.n}` }, version);
    if (res.status === 200) {
      this.servers.set(id, res.json.version);
      this.ack('update mcp server', 'mcp_server.updated', id, res.json.version);
    } else this.fail('update mcp server', res, () => this.servers.delete(id));
  }

  private async createRule(agentId: string, serverId: string): Promise<void> {
    const res = await this.call('POST', '/api/v1/trust-rules', { agentId, mcpServerId: serverId, toolPattern: 'tools.*', effect: 'allow', priority: ++this.n });
    const agent = this.agents.get(agentId);
    if (res.status === 201) {
      if (agent) agent.rules++;
      this.ack('create trust rule', 'trust_rule.created', res.json.id, res.json.version);
    } else {
      // Its outcome is unknown: the agent may be referenced now, so it is never deleted.
      this.fail('create trust rule', res, () => {
        if (agent) agent.rules++;
      });
    }
  }
}
