import { Controller, Get, Headers, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '../auth/principal.js';
import { ADMIN_BASE, AdminAssets, sendAsset } from './admin-assets.js';

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

  private serve(request: FastifyRequest, reply: FastifyReply, ifNoneMatch: string | undefined): Promise<void> {
    return sendAsset(this.assets, ADMIN_BASE, 'admin GUI', request, reply, ifNoneMatch);
  }
}
