import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { isReferencedError, PG, pgCode } from '../../database/sql.js';
import { EgressClient } from '../../egress/egress.module.js';
import { quotaExceeded } from '../registry-limits.js';
import { decodeCursor, isSlug, type Page, pageOf } from '../registry.schemas.js';
import { type ChangeTarget, RegistryWriter } from '../registry.writer.js';
import { HeaderSecrets } from './header-secrets.js';
import { type CreatedServer, type McpServer, McpServerRepository, type SealedHeaders } from './mcp-server.repository.js';
import type { CreateMcpServer, UpdateMcpServer } from './mcp-server.schemas.js';
import type { Sealer } from './secret-box.js';
import { openUrl, sealUrl } from './url-secret.js';

/** Associated data sealing a header set to its server, so ciphertexts cannot be swapped between rows. */
const context = (id: string) => `mcp_server:${id}`;

function seal(box: Sealer, id: string, headers: Record<string, string>): SealedHeaders {
  const names = Object.keys(headers);
  return { secret: names.length === 0 ? null : box.encrypt(JSON.stringify(headers), context(id)), names };
}

function open(box: Sealer, id: string, sealed: SealedHeaders): Record<string, string> {
  return sealed.secret === null ? {} : (JSON.parse(box.decrypt(sealed.secret, context(id))) as Record<string, string>);
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const canonical = (h: Record<string, string>) => JSON.stringify(Object.entries(h).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return canonical(a) === canonical(b);
}

/**
 * MCP server use cases. Each mutation writes the row and its outbox event in
 * one transaction (RegistryWriter). Header values and the URL's query string are secrets:
 * sealed with the SecretRing before they reach the database, never returned
 * by the API (masked as `***`) and never put in events; only `getHeaders` and
 * `getUrl` (for health probes and the gateway) open them. A URL whose literal
 * host the egress policy refuses (metadata, link-local; private unless
 * MCP_ALLOW_PRIVATE_NETWORKS) is a 400 on `url`.
 */
@Injectable()
export class McpServerService implements OnApplicationBootstrap {
  private readonly logger = new Logger('McpServers');

  constructor(
    private readonly dataSource: DataSource,
    private readonly servers: McpServerRepository,
    private readonly writer: RegistryWriter,
    private readonly secrets: HeaderSecrets,
    private readonly egress: EgressClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * URLs with a query string stored before they were sealed (an upgrade) are
   * sealed and masked at start; replicas starting together lock the rows, so
   * each is done once.
   */
  async onApplicationBootstrap(): Promise<void> {
    try {
      const box = await this.secrets.get();
      const sealed = await this.dataSource.transaction(async (m) => {
        const found = await this.servers.findUnsealedUrls(m);
        for (const row of found) {
          const { masked, secret } = sealUrl(box, row.id, row.url);
          if (secret !== null) await this.servers.setUrl(m, row.id, masked, secret);
        }
        return found.length;
      });
      if (sealed > 0) this.logger.log(`sealed the query string of ${sealed} MCP server URL(s)`);
    } catch (error) {
      this.logger.warn(`sealing stored MCP server URLs failed (retried at next start): ${(error as Error).message}`);
    }
  }

  async create(input: CreateMcpServer, actor: string): Promise<McpServer> {
    this.egress.assertRegistrable(input.url);
    const box = await this.secrets.get();
    const { headers, ...fields } = input;
    const url = sealUrl(box, input.id, input.url);
    const limit = this.config.registryLimits.mcpServers;
    let created: CreatedServer;
    try {
      created = await this.servers.create(this.writer.statement, { ...fields, url: url.masked }, seal(box, input.id, headers), url.secret, actor, limit);
    } catch (error) {
      if (pgCode(error) === PG.uniqueViolation) throw DomainError.conflict(`MCP server "${input.id}" already exists`);
      throw error;
    }
    if ('server' in created) return created.server;
    if (created.refused === 'exists') throw DomainError.conflict(`MCP server "${input.id}" already exists`);
    throw quotaExceeded('MCP servers', limit, 'MAX_MCP_SERVERS');
  }

  async get(id: string): Promise<McpServer> {
    const server = await this.servers.find(this.dataSource.manager, id);
    if (!server) throw DomainError.notFound('MCP server', id);
    return server;
  }

  async list(limit: number, cursor?: string, enabled?: boolean): Promise<Page<McpServer>> {
    const found = await this.servers.list(this.dataSource.manager, limit + 1, decodeCursor(cursor, isSlug), enabled);
    return pageOf(found, limit, (s) => s.id);
  }

  /** The server's headers with their values, decrypted (for the gateway; never for API responses). */
  async getHeaders(id: string): Promise<Record<string, string>> {
    const sealed = await this.servers.findHeaders(this.dataSource.manager, id);
    if (!sealed) throw DomainError.notFound('MCP server', id);
    return open(await this.secrets.get(), id, sealed);
  }

  /** The server's whole URL, query string included (for health probes and the gateway; never for API responses). */
  async getUrl(id: string): Promise<string> {
    const stored = await this.servers.findUrl(this.dataSource.manager, id);
    if (!stored) throw DomainError.notFound('MCP server', id);
    return openUrl(await this.secrets.get(), id, stored);
  }

  /**
   * PATCH. `url`: sending back the masked URL the API showed (`?api_key=***`)
   * keeps the stored one; any other URL replaces it.
   */
  async update(id: string, patch: UpdateMcpServer, expected: number | undefined, actor: string): Promise<McpServer> {
    if (patch.url !== undefined) this.egress.assertRegistrable(patch.url);
    const box = patch.headers !== undefined || patch.url !== undefined ? await this.secrets.get() : undefined;
    return this.writer.change(this.target(id, expected), async (current, m) => {
      const { version: _ignored, headers, healthCheck, url, ...fields } = patch;
      const next: McpServer = { ...current, ...fields, healthCheck: { ...current.healthCheck, ...healthCheck } };
      const changed: string[] = (['name', 'transport', 'healthCheck', 'enabled'] as const).filter(
        (k) => JSON.stringify(next[k]) !== JSON.stringify(current[k]),
      );
      let urlSecret: string | null | undefined;
      if (url !== undefined && url !== current.url && !(await this.urlEqual(m, box!, id, url))) {
        const sealedUrl = sealUrl(box!, id, url);
        next.url = sealedUrl.masked;
        urlSecret = sealedUrl.secret;
        changed.push('url');
      }
      let sealed: SealedHeaders | undefined;
      if (headers !== undefined && !(await this.headersEqual(m, box!, id, headers))) {
        sealed = seal(box!, id, headers);
        changed.push('headers');
      }
      if (changed.length === 0) return { result: current };
      const server = await this.servers.update(m, next, sealed, urlSecret);
      return { result: server, event: { type: 'mcp_server.updated', id, version: server.version, actor, data: { changed } } };
    });
  }

  async delete(id: string, expected: number | undefined, actor: string): Promise<void> {
    try {
      await this.writer.change(this.target(id, expected), async (current, m) => {
        await this.servers.delete(m, id);
        return { result: undefined, event: { type: 'mcp_server.deleted', id, version: current.version, actor } };
      });
    } catch (error) {
      if (isReferencedError(error)) {
        throw DomainError.conflict(`MCP server "${id}" is referenced by trust rules; delete those first`);
      }
      throw error;
    }
  }

  private target(id: string, expected: number | undefined): ChangeTarget<McpServer> {
    return { what: 'MCP server', id, expected, lock: (m) => this.servers.find(m, id, true) };
  }

  /** Whether the stored URL equals `url`; one that no longer decrypts counts as different. */
  private async urlEqual(m: EntityManager, box: Sealer, id: string, url: string): Promise<boolean> {
    const stored = await this.servers.findUrl(m, id);
    if (!stored) return false;
    try {
      return openUrl(box, id, stored) === url;
    } catch {
      return false;
    }
  }

  /** Whether the stored header set equals `headers`; one that no longer decrypts (key changed) counts as different. */
  private async headersEqual(m: EntityManager, box: Sealer, id: string, headers: Record<string, string>): Promise<boolean> {
    const sealed = await this.servers.findHeaders(m, id);
    if (!sealed) return false;
    try {
      return sameHeaders(open(box, id, sealed), headers);
    } catch {
      return false;
    }
  }
}
