import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../../common/domain-error.js';
import { isReferencedError, PG, pgCode } from '../../database/sql.js';
import { OutboxRepository } from '../../outbox/outbox.repository.js';
import { decodeCursor, type Page, pageOf } from '../registry.schemas.js';
import { HeaderSecrets } from './header-secrets.js';
import { type McpServer, McpServerRepository, type SealedHeaders } from './mcp-server.repository.js';
import type { CreateMcpServer, UpdateMcpServer } from './mcp-server.schemas.js';
import type { SecretBox } from './secret-box.js';

/** Associated data sealing a header set to its server, so ciphertexts cannot be swapped between rows. */
const context = (id: string) => `mcp_server:${id}`;

function seal(box: SecretBox, id: string, headers: Record<string, string>): SealedHeaders {
  const names = Object.keys(headers);
  return { secret: names.length === 0 ? null : box.encrypt(JSON.stringify(headers), context(id)), names };
}

function open(box: SecretBox, id: string, sealed: SealedHeaders): Record<string, string> {
  return sealed.secret === null ? {} : (JSON.parse(box.decrypt(sealed.secret, context(id))) as Record<string, string>);
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const canonical = (h: Record<string, string>) => JSON.stringify(Object.entries(h).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return canonical(a) === canonical(b);
}

/**
 * MCP server use cases. Each mutation writes the row and its outbox event in
 * one transaction. Header values are secrets: sealed with the SecretBox
 * before they reach the database, never returned by the API and never put in
 * events; only `getHeaders` (for the gateway) opens them.
 */
@Injectable()
export class McpServerService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly servers: McpServerRepository,
    private readonly outbox: OutboxRepository,
    private readonly secrets: HeaderSecrets,
  ) {}

  async create(input: CreateMcpServer, actor: string): Promise<McpServer> {
    const box = await this.secrets.get();
    const { headers, ...fields } = input;
    try {
      return await this.dataSource.transaction(async (m) => {
        const server = await this.servers.insert(m, fields, seal(box, input.id, headers));
        await this.outbox.append(m, { type: 'mcp_server.created', id: server.id, version: server.version, actor });
        return server;
      });
    } catch (error) {
      if (pgCode(error) === PG.uniqueViolation) throw DomainError.conflict(`MCP server "${input.id}" already exists`);
      throw error;
    }
  }

  async get(id: string): Promise<McpServer> {
    const server = await this.servers.find(this.dataSource.manager, id);
    if (!server) throw DomainError.notFound('MCP server', id);
    return server;
  }

  async list(limit: number, cursor?: string, enabled?: boolean): Promise<Page<McpServer>> {
    const found = await this.servers.list(this.dataSource.manager, limit + 1, decodeCursor(cursor), enabled);
    return pageOf(found, limit, (s) => s.id);
  }

  /** The server's headers with their values, decrypted (for the gateway; never for API responses). */
  async getHeaders(id: string): Promise<Record<string, string>> {
    const sealed = await this.servers.findHeaders(this.dataSource.manager, id);
    if (!sealed) throw DomainError.notFound('MCP server', id);
    return open(await this.secrets.get(), id, sealed);
  }

  async update(id: string, patch: UpdateMcpServer, expected: number | undefined, actor: string): Promise<McpServer> {
    const box = patch.headers !== undefined ? await this.secrets.get() : undefined;
    return this.dataSource.transaction(async (m) => {
      const current = await this.servers.find(m, id, true);
      if (!current) throw DomainError.notFound('MCP server', id);
      if (expected !== undefined && expected !== current.version) throw DomainError.stale('MCP server', id, current.version);
      const { version: _ignored, headers, healthCheck, ...fields } = patch;
      const next: McpServer = { ...current, ...fields, healthCheck: { ...current.healthCheck, ...healthCheck } };
      const changed: string[] = (['name', 'url', 'transport', 'healthCheck', 'enabled'] as const).filter(
        (k) => JSON.stringify(next[k]) !== JSON.stringify(current[k]),
      );
      let sealed: SealedHeaders | undefined;
      if (headers !== undefined && !(await this.headersEqual(m, box!, id, headers))) {
        sealed = seal(box!, id, headers);
        changed.push('headers');
      }
      if (changed.length === 0) return current;
      const server = await this.servers.update(m, next, sealed);
      await this.outbox.append(m, { type: 'mcp_server.updated', id, version: server.version, actor, data: { changed } });
      return server;
    });
  }

  async delete(id: string, expected: number | undefined, actor: string): Promise<void> {
    try {
      await this.dataSource.transaction(async (m) => {
        const current = await this.servers.find(m, id, true);
        if (!current) throw DomainError.notFound('MCP server', id);
        if (expected !== undefined && expected !== current.version) throw DomainError.stale('MCP server', id, current.version);
        await this.servers.delete(m, id);
        await this.outbox.append(m, { type: 'mcp_server.deleted', id, version: current.version, actor });
      });
    } catch (error) {
      if (isReferencedError(error)) {
        throw DomainError.conflict(`MCP server "${id}" is referenced by trust rules; delete those first`);
      }
      throw error;
    }
  }

  /** Whether the stored header set equals `headers`; one that no longer decrypts (key changed) counts as different. */
  private async headersEqual(m: EntityManager, box: SecretBox, id: string, headers: Record<string, string>): Promise<boolean> {
    const sealed = await this.servers.findHeaders(m, id);
    if (!sealed) return false;
    try {
      return sameHeaders(open(box, id, sealed), headers);
    } catch {
      return false;
    }
  }
}
