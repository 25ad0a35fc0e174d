/** Resources as the REST API returns them (src/registry/**). */

export type Role = 'viewer' | 'editor' | 'admin';

export interface Me {
  kind: 'user' | 'api_key';
  name: string;
  role: Role;
}

export interface ModelSettings {
  provider: string;
  name: string;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  parameters?: Record<string, unknown>;
}

export interface Agent {
  id: string;
  name: string;
  description: string;
  model: ModelSettings;
  tags: string[];
  metadata: Record<string, unknown>;
  activePromptVersion: number | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Prompt {
  agentId: string;
  version: number;
  template: string;
  description: string;
  variables: string[];
  active: boolean;
  createdBy: string | null;
  createdAt: string;
}

export interface McpServer {
  id: string;
  name: string;
  url: string;
  transport: 'streamable-http' | 'sse';
  headers: Record<string, string>;
  enabled: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
  /** Present once the health module reports (shape read defensively: see health.ts). */
  health?: unknown;
  status?: unknown;
  circuit?: unknown;
}

export type Effect = 'allow' | 'deny' | 'require_approval';

export interface TrustRule {
  id: string;
  agentId: string;
  mcpServerId: string;
  toolPattern: string;
  effect: Effect;
  priority: number;
  description: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** GET /api/v1/discovery: everything, consistent with `cursor` (trust_rules only for editor and admin). */
export interface Discovery {
  cursor: number;
  agents: Agent[];
  prompts: Prompt[];
  mcp_servers: McpServer[];
  trust_rules?: TrustRule[];
}

export interface Notice {
  id: string;
  kind: 'system.alert' | 'system.maintenance';
  message: string;
  expiresAt?: string | null;
}

export interface Problem {
  status: number;
  code?: string;
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}
