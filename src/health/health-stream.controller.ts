import { Controller, Get, Headers, Inject, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { z } from 'zod';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ZodPipe } from '../common/zod-validation.pipe.js';
import { EventFilter } from '../streaming/event-filter.js';
import type { HubEvent } from '../streaming/event-window.js';
import { chunk, encodeCursor, encodeSse, type SseConnection } from '../streaming/sse.connection.js';
import { SseStreamService } from '../streaming/sse-stream.service.js';
import { parseCursor } from '../streaming/stream.schemas.js';
import { healthStreamQuery, parseServers } from './health.schemas.js';
import type { HealthSnapshot } from './health.service.js';
import { HEALTH_EVENTS, type HealthClient, type HealthCodec, HealthStream } from './health-stream.service.js';

/** SSE encoding of the health stream: recorded events as in the change stream, plus `snapshot` and `health.check`. */
export const HEALTH_SSE_CODEC: HealthCodec<Buffer> = {
  transport: 'sse',
  events: encodeSse,
  cursor: encodeCursor,
  snapshot: (s: HealthSnapshot) => chunk(Buffer.from(`id: ${s.cursor}\nevent: snapshot\ndata: ${JSON.stringify(s)}\n\n`)),
  check: (json: string) => chunk(Buffer.from(`event: health.check\ndata: ${json}\n\n`)),
};

/** An SSE connection as a health-stream client: `health.check` frames are dropped while its socket holds more than `bound` unsent bytes. */
export class SseHealthClient implements HealthClient<Buffer> {
  constructor(
    private readonly conn: SseConnection,
    private readonly socket: Socket,
    private readonly bound: number,
    private readonly onDrop: () => void,
  ) {}

  get filter(): EventFilter {
    return this.conn.filter;
  }
  get cursor(): number {
    return this.conn.cursor;
  }
  set cursor(value: number) {
    this.conn.cursor = value;
  }
  get closed(): boolean {
    return this.conn.closed;
  }
  write(payload: Buffer): void {
    this.conn.write(payload);
  }
  writeReplay(events: HubEvent[]): Promise<void> {
    return this.conn.writeReplay(events);
  }
  reset(cursor: number, reason: string): void {
    this.conn.reset(cursor, reason);
  }
  close(reason: string): void {
    this.conn.close(reason);
  }
  snapshot(payload: Buffer): void {
    this.conn.write(payload);
  }
  check(payload: Buffer): void {
    if (this.socket.writableLength > this.bound) {
      this.onDrop();
      return;
    }
    this.conn.write(payload);
  }
}

@Controller('api/v1/stream')
export class HealthStreamController {
  constructor(
    private readonly sse: SseStreamService,
    private readonly stream: HealthStream,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** SSE health stream: snapshot, then health events (resumable) and live `health.check` frames; `?servers=` narrows. */
  @Get('health')
  async health(
    @Query(new ZodPipe(healthStreamQuery, 'query')) query: z.infer<typeof healthStreamQuery>,
    @Headers('last-event-id') lastEventId: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const servers = parseServers(query.servers);
    const cursor = lastEventId !== undefined ? parseCursor(lastEventId, 'Last-Event-ID') : parseCursor(query.lastEventId, 'lastEventId');
    const filter = EventFilter.parse(HEALTH_EVENTS, principal.role);
    const socket = request.raw.socket;
    await this.sse.open(request, reply, principal, filter, cursor, (conn) =>
      this.stream.follow(new SseHealthClient(conn, socket, this.config.health.checkBufferBytes, () => this.stream.droppedCheck()), HEALTH_SSE_CODEC, {
        servers,
        cursor,
        role: principal.role,
      }),
    );
  }
}
