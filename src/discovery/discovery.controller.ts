import { Controller, Get, Headers, Inject, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CredentialWatcher } from '../auth/credential-watcher.js';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { ClusterState } from '../bus/event-bus.js';
import { DomainError } from '../common/domain-error.js';
import { drainedOrClosed } from '../common/drained.js';
import { ZodPipe } from '../common/zod-validation.pipe.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';
import { DiscoveryService, type DiscoveryView } from './discovery.service.js';

const discoveryQuery = z.strictObject({
  stream: z.enum(['true', 'false']).default('false'),
  pageSize: z.coerce.number().int().min(1).max(1000).default(100),
});

function counts(view: DiscoveryView): Record<string, number> {
  return Object.fromEntries(Object.entries(view.sections).map(([name, items]) => [name, items.length]));
}

@Controller('api/v1/discovery')
export class DiscoveryController {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly outbox: OutboxRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly cluster: ClusterState,
    private readonly credentials: CredentialWatcher,
  ) {}

  /**
   * Everything at once, with the `cursor` (seq) it is consistent with: follow
   * /stream/changes from it to miss nothing and repeat nothing. `?stream=true`
   * sends the same snapshot progressively over SSE.
   */
  @Get()
  async discover(
    @Query(new ZodPipe(discoveryQuery, 'query')) query: z.infer<typeof discoveryQuery>,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    if (query.stream === 'true') return this.stream(request, reply, principal, query.pageSize);
    if (ifNoneMatch) {
      const { lastSeq, pending } = await this.outbox.head();
      if (!pending && ifNoneMatch === this.discovery.etag(lastSeq, principal.role)) {
        await reply.status(304).header('etag', ifNoneMatch).send();
        return;
      }
    }
    const view = this.discovery.view(await this.discovery.snapshot(), principal.role);
    const etag = this.discovery.etag(view.cursor, principal.role);
    if (ifNoneMatch === etag) {
      await reply.status(304).header('etag', etag).send();
      return;
    }
    await reply
      .header('etag', etag)
      .header('cache-control', 'no-cache')
      .send({ cursor: view.cursor, ...view.sections, counts: counts(view) });
  }

  /**
   * The progressive stream is a stream connection like /stream/changes (GET
   * and HEAD alike): it takes a slot of MAX_CONNECTIONS_PER_USER /
   * MAX_CONNECTIONS_TOTAL until it ends, and it ends early when its
   * credential is revoked.
   */
  private async stream(request: FastifyRequest, reply: FastifyReply, principal: Principal, pageSize: number): Promise<void> {
    const limits = this.config.limits;
    const slot = await this.cluster.acquireConnection(principal.id, limits.connectionsPerUser, limits.connectionsTotal);
    if (slot !== 'ok') {
      const detail =
        slot === 'user_limit' ? `you already have ${limits.connectionsPerUser} open stream connections` : 'the service is at its stream connection limit';
      throw new DomainError('too_many_requests', detail, { headers: { 'retry-after': '5' } });
    }
    let released = false;
    let untrack = (): void => undefined;
    const release = () => {
      if (released) return;
      released = true;
      untrack();
      void this.cluster.releaseConnection(principal.id).catch(() => undefined);
    };
    let view: DiscoveryView;
    try {
      view = this.discovery.view(await this.discovery.snapshot(), principal.role);
    } catch (error) {
      release();
      throw error;
    }
    reply.hijack();
    const res = reply.raw;
    res.on('close', release);
    untrack = this.credentials.track(principal, { close: () => res.destroy() });
    if (res.destroyed) release();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(request.id),
    });
    const send = async (text: string) => {
      if (!res.write(text) && !res.destroyed) await drainedOrClosed(res);
    };
    await send(`retry: ${this.config.stream.retryMs}\n\n`);
    for (const [section, items] of Object.entries(view.sections)) {
      const pages = Math.max(1, Math.ceil(items.length / pageSize));
      for (let page = 0; page < pages && !res.destroyed; page++) {
        const data = JSON.stringify({ page, pages, total: items.length, items: items.slice(page * pageSize, (page + 1) * pageSize) });
        await send(`event: ${section}\ndata: ${data}\n\n`);
      }
    }
    if (!res.destroyed) await send(`id: ${view.cursor}\nevent: complete\ndata: ${JSON.stringify({ cursor: view.cursor, counts: counts(view) })}\n\n`);
    res.end();
  }
}
