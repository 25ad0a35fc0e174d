import { Controller, Get, Headers, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { ZodPipe } from '../common/zod-validation.pipe.js';
import { EventFilter } from './event-filter.js';
import { SseStreamService } from './sse-stream.service.js';
import { changesQuery, parseCursor } from './stream.schemas.js';

@Controller('api/v1/stream')
export class ChangesController {
  constructor(private readonly streams: SseStreamService) {}

  /** SSE change stream: `?events=` filter, resume from Last-Event-ID or `?lastEventId=`. */
  @Get('changes')
  async changes(
    @Query(new ZodPipe(changesQuery, 'query')) query: z.infer<typeof changesQuery>,
    @Headers('last-event-id') lastEventId: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const filter = EventFilter.parse(query.events, principal.role);
    const cursor = lastEventId !== undefined ? parseCursor(lastEventId, 'Last-Event-ID') : parseCursor(query.lastEventId, 'lastEventId');
    await this.streams.open(request, reply, principal, filter, cursor);
  }
}
