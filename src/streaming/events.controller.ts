import { Controller, Get, Query } from '@nestjs/common';
import { z } from 'zod';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { ZodPipe } from '../common/zod-validation.pipe.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';
import { EventFilter } from './event-filter.js';
import { eventsQuery, parseCursor } from './stream.schemas.js';

/** The change stream over plain REST: for clients that must poll, and the audit trail. */
@Controller('api/v1/events')
export class EventsController {
  constructor(private readonly outbox: OutboxRepository) {}

  @Get()
  async list(@Query(new ZodPipe(eventsQuery, 'query')) query: z.infer<typeof eventsQuery>, @CurrentPrincipal() principal: Principal) {
    const filter = EventFilter.parse(query.events, principal.role);
    const after = parseCursor(query.after, 'after') ?? 0;
    const { head, items } = await this.outbox.readFeed(after, query.limit, filter.all ? undefined : filter.types);
    if (after < head.prunedThrough) {
      throw new DomainError('gone', `events after ${after} were pruned by retention; refetch state (GET /api/v1/discovery) and poll from its cursor`, {
        extensions: { cursor: head.lastSeq, prunedThrough: head.prunedThrough },
      });
    }
    // Head and page come from one snapshot: a short page means everything up to
    // the head was seen, so `next` moves past events the filter skipped too.
    const last = items.length > 0 ? items[items.length - 1].seq : after;
    const next = items.length === query.limit ? last : Math.max(after, head.lastSeq, last);
    return { items, next, head: head.lastSeq };
  }
}
