import { Controller, Get, Headers, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { acceptsGzip, ADMIN_BASE, AdminAssets, etagMatches, SECURITY_HEADERS } from './admin-assets.js';

/**
 * The admin GUI at `/admin` (React, built by Vite into `gui/dist`). Public:
 * the page itself holds no data; the GUI signs in through the API (session
 * cookie, or an API key kept in memory). `index.html` is revalidated on every
 * load, hashed `assets/*` are cached for a year; unknown `/admin/...` paths
 * are the GUI's own routes (index.html), missing files are a 404
 * problem+json, and a server without a built GUI answers 503.
 */
@Controller('admin')
@Public()
export class AdminUiController {
  constructor(@Inject(AdminAssets) private readonly assets: AdminAssets) {}

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
    const answer = this.assets.resolve(pathname.slice(ADMIN_BASE.length));
    if (answer.kind === 'unavailable') throw new DomainError('service_unavailable', answer.detail, { headers: { 'retry-after': '10' } });
    if (answer.kind === 'not_found') throw new DomainError('not_found', 'no such file in the admin GUI');
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
