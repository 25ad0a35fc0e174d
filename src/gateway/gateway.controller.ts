import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { parseWith, ZodPipe } from '../common/zod-validation.pipe.js';
import { parseCursor } from '../streaming/stream.schemas.js';
import { parseNamespaced } from './core/namespacing.js';
import { createSessionSchema, jsonRpcRequest, sessionIdParam, toolCallRequest, toolPathParams, toolStreamQuery } from './gateway.schemas.js';
import { GatewaySessions } from './sessions/gateway-sessions.service.js';
import { ToolStreams } from './tool-streams/tool-streams.service.js';

const BASE = '/api/v1/gateway/stream';

/** Streaming sessions: open, follow (SSE), send requests, close. Access is the gateway policy's (admin, or a key bound to an agent). */
@Controller('api/v1/gateway/stream')
export class GatewaySessionsController {
  constructor(private readonly sessions: GatewaySessions) {}

  @Post()
  @HttpCode(201)
  async create(
    @Body(new ZodPipe(createSessionSchema)) body: z.infer<typeof createSessionSchema>,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const created = await this.sessions.create(principal, body.servers, body.deferred);
    reply.header('cache-control', 'no-store');
    return {
      session_id: created.session_id,
      stream_url: `${BASE}/${created.session_id}`,
      request_url: `${BASE}/${created.session_id}/request`,
      deferred: created.deferred,
      servers: created.servers,
    };
  }

  @Get(':sessionId')
  async stream(
    @Param('sessionId') sessionId: string,
    @Query('lastEventId') lastEventIdQuery: string | undefined,
    @Headers('last-event-id') lastEventId: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const id = parseWith(sessionIdParam, sessionId, 'sessionId');
    const cursor = lastEventId !== undefined ? parseCursor(lastEventId, 'Last-Event-ID') : parseCursor(lastEventIdQuery, 'lastEventId');
    await this.sessions.stream(request, reply, principal, id, cursor);
  }

  @Post(':sessionId/request')
  @HttpCode(202)
  async request(
    @Param('sessionId') sessionId: string,
    @Body(new ZodPipe(jsonRpcRequest)) body: z.infer<typeof jsonRpcRequest>,
    @CurrentPrincipal() principal: Principal,
  ) {
    return this.sessions.request(principal, parseWith(sessionIdParam, sessionId, 'sessionId'), body);
  }

  @Delete(':sessionId')
  @HttpCode(204)
  async close(@Param('sessionId') sessionId: string, @CurrentPrincipal() principal: Principal): Promise<void> {
    await this.sessions.close(principal, parseWith(sessionIdParam, sessionId, 'sessionId'));
  }
}

/** Tool calls streamed with progress: a POSTed JSON-RPC tools/call, or a GET for EventSource clients. */
@Controller('api/v1')
export class ToolStreamsController {
  constructor(private readonly tools: ToolStreams) {}

  @Post('mcp/stream')
  async post(
    @Body(new ZodPipe(toolCallRequest)) body: z.infer<typeof toolCallRequest>,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const parsed = parseNamespaced(body.params.name);
    if (!parsed) throw DomainError.field('params.name', 'must be a namespaced tool name: <server>__<tool>');
    await this.tools.run(request, reply, principal, { serverId: parsed.serverId, tool: parsed.name, arguments: body.params.arguments, id: body.id });
  }

  @Get('stream/tools/:server/:tool')
  async get(
    @Param() params: Record<string, string>,
    @Query(new ZodPipe(toolStreamQuery, 'query')) query: z.infer<typeof toolStreamQuery>,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const { server, tool } = parseWith(toolPathParams, params);
    await this.tools.run(request, reply, principal, { serverId: server, tool, arguments: query.arguments, id: query.id ?? 1 });
  }
}
