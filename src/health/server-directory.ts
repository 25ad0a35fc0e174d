import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { McpServer } from '../registry/mcp-servers/mcp-server.repository.js';
import { McpServerRepository } from '../registry/mcp-servers/mcp-server.repository.js';
import { McpServerService } from '../registry/mcp-servers/mcp-server.service.js';
import { EventFilter } from '../streaming/event-filter.js';
import type { HubEvent } from '../streaming/event-window.js';
import { StreamHub } from '../streaming/stream.hub.js';
import type { Codec, Subscriber } from '../streaming/subscriber.js';
import type { ProbeTarget } from './health.types.js';

const PAGE = 1000;

/** The registry changes the directory follows. */
const REGISTRY_EVENTS = 'mcp_server.created,mcp_server.updated,mcp_server.deleted';

/** The directory reads the hub's batches as they are (no encoding). */
const PASS_THROUGH: Codec<HubEvent[]> = { transport: 'health-directory', events: (events) => events, cursor: () => [] };

export type DirectoryListener = (serverId: string, target: ProbeTarget | undefined) => void;

function toTarget(s: McpServer): ProbeTarget {
  return { id: s.id, name: s.name, transport: s.transport, enabled: s.enabled, version: s.version, healthCheck: s.healthCheck };
}

/**
 * Every replica's view of the registered MCP servers, for probing and for the
 * breakers. It follows the change stream (`mcp_server.created|updated|deleted`)
 * through the replica's StreamHub, so a server registered, changed, disabled
 * or deleted through ANY replica reaches every replica in order, without a
 * hook in the write path; a full re-read every HEALTH_RESYNC_MS (and on a
 * stream reset) is the safety net. The decrypted URL and headers a probe
 * needs are opened on first use and kept until the server's version changes.
 */
@Injectable()
export class ServerDirectory implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('HealthDirectory');
  private readonly servers = new Map<string, ProbeTarget>();
  private readonly endpoints = new Map<string, { version: number; url: string; headers: Record<string, string> }>();
  private readonly listeners: DirectoryListener[] = [];
  private readonly pending = new Set<string>();
  private flushing = false;
  private timer?: NodeJS.Timeout;
  private subscriber?: Subscriber<HubEvent[]> & { closed: boolean };
  private stopped = false;
  private loaded?: Promise<void>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly repository: McpServerRepository,
    private readonly mcpServers: McpServerService,
    private readonly hub: StreamHub,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.loaded = this.start();
    this.timer = setInterval(
      () => void this.reloadAll().catch((e: Error) => this.logger.warn(`re-reading MCP servers failed: ${e.message}`)),
      this.config.health.resyncMs,
    );
    this.timer.unref();
  }

  /** Resolves once the first full read is done. */
  ready(): Promise<void> {
    return this.loaded ?? Promise.resolve();
  }

  private async start(): Promise<void> {
    // Follow first, then read: a change between the two is applied twice (harmless), never missed.
    this.follow();
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.reloadAll();
        return;
      } catch (error) {
        this.logger.warn(`reading MCP servers failed (${(error as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  private follow(): void {
    if (this.stopped) return;
    const sub = {
      filter: EventFilter.parse(REGISTRY_EVENTS, 'admin'),
      cursor: 0,
      closed: false,
      write: (events: HubEvent[]) => this.onEvents(events),
      writeReplay: async (events: HubEvent[]) => this.onEvents(events),
      reset: () => void this.reloadAll().catch(() => undefined),
      close: () => {
        sub.closed = true;
        this.hub.leave(sub);
        setTimeout(() => this.follow(), 1000).unref();
      },
    };
    this.subscriber = sub;
    void this.hub.follow(sub, PASS_THROUGH, undefined).catch((error: Error) => {
      this.logger.warn(`following registry changes failed (${error.message}); retrying`);
      sub.close();
    });
  }

  private onEvents(events: HubEvent[]): void {
    for (const e of events) {
      try {
        this.pending.add((JSON.parse(e.json) as { id: string }).id);
      } catch {
        // not an event of ours
      }
    }
    void this.flush();
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const ids = [...this.pending];
        this.pending.clear();
        for (const id of ids) await this.reload(id);
      }
    } catch (error) {
      this.logger.warn(`reading changed MCP servers failed (${(error as Error).message}); the next full re-read catches up`);
    } finally {
      this.flushing = false;
    }
  }

  private async reload(id: string): Promise<void> {
    const server = await this.repository.find(this.dataSource.manager, id);
    this.apply(id, server ? toTarget(server) : undefined);
  }

  private apply(id: string, target: ProbeTarget | undefined): void {
    const before = this.servers.get(id);
    if (target) this.servers.set(id, target);
    else this.servers.delete(id);
    if (!target || before?.version !== target.version) this.endpoints.delete(id);
    if (before === undefined && target === undefined) return;
    if (before && target && before.version === target.version) return;
    for (const l of this.listeners) l(id, target);
  }

  async reloadAll(): Promise<void> {
    const seen = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.repository.list(this.dataSource.manager, PAGE, after);
      for (const s of page) {
        seen.add(s.id);
        this.apply(s.id, toTarget(s));
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    for (const id of [...this.servers.keys()]) if (!seen.has(id)) this.apply(id, undefined);
  }

  onChange(listener: DirectoryListener): void {
    this.listeners.push(listener);
  }

  get(id: string): ProbeTarget | undefined {
    return this.servers.get(id);
  }

  all(): ProbeTarget[] {
    return [...this.servers.values()];
  }

  /** The decrypted URL and headers (never shown by the API; for probes and the gateway). */
  async endpoint(id: string): Promise<{ url: string; headers: Record<string, string> }> {
    const target = this.servers.get(id);
    const cached = this.endpoints.get(id);
    if (cached && target && cached.version === target.version) return cached;
    const [url, headers] = await Promise.all([this.mcpServers.getUrl(id), this.mcpServers.getHeaders(id)]);
    const entry = { version: target?.version ?? -1, url, headers };
    if (target) this.endpoints.set(id, entry);
    return entry;
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.subscriber) {
      this.subscriber.closed = true;
      this.hub.leave(this.subscriber);
    }
  }
}
