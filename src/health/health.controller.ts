import { Controller, Get, Param, Query } from '@nestjs/common';
import { z } from 'zod';
import { parseWith, ZodPipe } from '../common/zod-validation.pipe.js';
import { slug } from '../registry/registry.schemas.js';
import { healthQuery, parseServers } from './health.schemas.js';
import { HealthService } from './health.service.js';

/** Health reads (viewer): one server with its last N samples, or every server. */
@Controller('api/v1')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('mcp-servers/:id/health')
  async server(@Param('id') id: string) {
    return this.health.get(parseWith(slug, id, 'id'));
  }

  /** `?servers=a,b` narrows; `?samples=true` adds every server's last N samples. */
  @Get('health')
  async all(@Query(new ZodPipe(healthQuery, 'query')) query: z.infer<typeof healthQuery>) {
    return this.health.overview(parseServers(query.servers), query.samples ?? false);
  }
}
