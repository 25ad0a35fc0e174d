import { Injectable } from '@nestjs/common';
import { ApiKeyService } from '../../auth/api-key.service.js';
import type { Principal } from '../../auth/principal.js';

/** Who is calling through the gateway, and so what they may reach. */
export interface GatewayCaller {
  readonly principal: Principal;
  /** The API key's id (`principal.id` without `key:`); null for a user. */
  readonly keyId: string | null;
  /** The agent whose trust rules limit this caller; null when the key is not bound (or a user). */
  readonly agentId: string | null;
  /** Admin keys and users reach every enabled server and tool. */
  readonly admin: boolean;
}

/** A key's binding is read at most this often per replica (bindings are fixed at creation; deleting the agent unbinds). */
const BINDING_TTL_MS = 5000;
const MAX_CACHED = 10_000;

/**
 * Resolves a principal to a gateway caller: an admin (key or user) reaches
 * everything; an API key bound to an agent reaches what that agent's trust
 * rules allow; anyone else reaches nothing.
 */
@Injectable()
export class GatewayCallers {
  private readonly bindings = new Map<string, { agentId: string | null; at: number }>();

  constructor(private readonly apiKeys: ApiKeyService) {}

  async resolve(principal: Principal): Promise<GatewayCaller> {
    const admin = principal.role === 'admin';
    if (principal.kind !== 'api_key') return { principal, keyId: null, agentId: null, admin };
    const keyId = principal.id.startsWith('key:') ? principal.id.slice(4) : principal.id;
    return { principal, keyId, agentId: await this.agentOf(keyId), admin };
  }

  private async agentOf(keyId: string): Promise<string | null> {
    const now = Date.now();
    const cached = this.bindings.get(keyId);
    if (cached && now - cached.at < BINDING_TTL_MS) return cached.agentId;
    const agentId = await this.apiKeys.agentOf(keyId);
    if (this.bindings.size >= MAX_CACHED) this.bindings.clear();
    this.bindings.set(keyId, { agentId, at: now });
    return agentId;
  }
}

/** The label a caller is counted under in metrics: its agent, `admin`, or `none`. */
export function callerLabel(caller: GatewayCaller): string {
  return caller.agentId ?? (caller.admin ? 'admin' : 'none');
}
