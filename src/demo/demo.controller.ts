import { Controller, Get, Headers, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminAssets, sendAsset } from '../admin-ui/admin-assets.js';
import { Public } from '../auth/principal.js';

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

  private serve(request: FastifyRequest, reply: FastifyReply, ifNoneMatch: string | undefined): Promise<void> {
    return sendAsset(this.assets, DEMO_BASE, 'demo', request, reply, ifNoneMatch);
  }
}
