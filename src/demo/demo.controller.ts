import { Controller, Get, Headers, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminAssets, acceptsGzip, etagMatches, SECURITY_HEADERS } from '../admin-ui/admin-assets.js';
import { Public } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';

/** The URL prefix the demo is served under (its Vite `base`). */
export const DEMO_BASE = '/demo';

/** The built demo's files (examples/browser-demo → `npm run build`), held like the admin GUI's. */
export class DemoAssets extends AdminAssets {}

/**
 * The browser demo of the client library at `/demo`: a static page (built by
 * Vite from examples/browser-demo, importing @agentic-registry/client) that
 * opens a gateway session and streams a tool call with the API key typed
 * into it. Public like /admin: the page holds no data. Same caching and
 * security headers as the admin GUI (strict CSP, `'self'` only).
 */
@Controller('demo')
@Public()
export class DemoController {
  constructor(@Inject(DemoAssets) private readonly assets: DemoAssets) {}

  @Get()
  async root(@Req() request: FastifyRequest, @Res() reply: FastifyReply, @Headers('if-none-match') ifNoneMatch?: string): Promise<void> {
    await this.serve(request, reply, ifNoneMatch);
  }

  @Get('*')
  async file(@Req() request: FastifyRequest, @Res() reply: FastifyReply, @Headers('if-none-match') ifNoneMatch?: string): Promise<void> {
    await this.serve(request, reply, ifNoneMatch);
  }

  private async serve(request: FastifyRequest, reply: FastifyReply, ifNoneMatch: string | undefined): Promise<void> {
    const pathname = request.url.split('?')[0];
    const answer = this.assets.resolve(pathname.slice(DEMO_BASE.length));
    if (answer.kind === 'unavailable')
      throw new DomainError('service_unavailable', answer.detail.replace('admin GUI', 'demo'), { headers: { 'retry-after': '10' } });
    if (answer.kind === 'not_found') throw new DomainError('not_found', 'no such file in the demo');
    const { file } = answer;
    reply.headers(SECURITY_HEADERS).header('cache-control', file.cacheControl).header('etag', file.etag).header('vary', 'accept-encoding');
    if (etagMatches(ifNoneMatch, file.etag)) {
      await reply.status(304).send();
      return;
    }
    reply.type(file.contentType);
    if (file.gzip && acceptsGzip(request.headers['accept-encoding'])) {
      await reply.header('content-encoding', 'gzip').send(file.gzip);
      return;
    }
    await reply.send(file.body);
  }
}
