import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { actorOf, CurrentPrincipal, type Principal, RequireRole } from '../../auth/principal.js';
import { etagFor, expectedVersion } from '../../common/etag.js';
import { parseWith, ZodPipe } from '../../common/zod-validation.pipe.js';
import { slug } from '../registry.schemas.js';
import { createMcpServerSchema, listMcpServersQuery, updateMcpServerSchema } from './mcp-server.schemas.js';
import { McpServerService } from './mcp-server.service.js';

@Controller('api/v1/mcp-servers')
export class McpServerController {
  constructor(private readonly servers: McpServerService) {}

  @Post()
  @RequireRole('editor')
  async create(
    @Body(new ZodPipe(createMcpServerSchema)) body: z.infer<typeof createMcpServerSchema>,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const server = await this.servers.create(body, actorOf(principal));
    reply.status(201).header('etag', etagFor(server.version)).header('location', `/api/v1/mcp-servers/${server.id}`);
    return server;
  }

  @Get()
  async list(@Query(new ZodPipe(listMcpServersQuery, 'query')) query: z.infer<typeof listMcpServersQuery>) {
    return this.servers.list(query.limit, query.cursor, query.enabled);
  }

  @Get(':id')
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const server = await this.servers.get(parseWith(slug, id, 'id'));
    reply.header('etag', etagFor(server.version));
    return server;
  }

  @Patch(':id')
  @RequireRole('editor')
  async update(
    @Param('id') id: string,
    @Body(new ZodPipe(updateMcpServerSchema)) body: z.infer<typeof updateMcpServerSchema>,
    @Headers('if-match') ifMatch: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const server = await this.servers.update(parseWith(slug, id, 'id'), body, expectedVersion(ifMatch, body.version), actorOf(principal));
    reply.header('etag', etagFor(server.version));
    return server;
  }

  @Delete(':id')
  @RequireRole('editor')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Headers('if-match') ifMatch: string | undefined, @CurrentPrincipal() principal: Principal) {
    await this.servers.delete(parseWith(slug, id, 'id'), expectedVersion(ifMatch), actorOf(principal));
  }
}
