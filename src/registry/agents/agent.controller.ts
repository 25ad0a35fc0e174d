import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { actorOf, CurrentPrincipal, type Principal, RequireRole } from '../../auth/principal.js';
import { etagFor, expectedVersion } from '../../common/etag.js';
import { parseWith, ZodPipe } from '../../common/zod-validation.pipe.js';
import { slug } from '../registry.schemas.js';
import { createAgentSchema, listAgentsQuery, updateAgentSchema } from './agent.schemas.js';
import { AgentService } from './agent.service.js';

@Controller('api/v1/agents')
export class AgentController {
  constructor(private readonly agents: AgentService) {}

  @Post()
  @RequireRole('editor')
  async create(
    @Body(new ZodPipe(createAgentSchema)) body: z.infer<typeof createAgentSchema>,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const agent = await this.agents.create(body, actorOf(principal));
    reply.status(201).header('etag', etagFor(agent.version)).header('location', `/api/v1/agents/${agent.id}`);
    return agent;
  }

  @Get()
  async list(@Query(new ZodPipe(listAgentsQuery, 'query')) query: z.infer<typeof listAgentsQuery>) {
    return this.agents.list(query.limit, query.cursor, query.tag);
  }

  @Get(':id')
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const agent = await this.agents.get(parseWith(slug, id, 'id'));
    reply.header('etag', etagFor(agent.version));
    return agent;
  }

  @Patch(':id')
  @RequireRole('editor')
  async update(
    @Param('id') id: string,
    @Body(new ZodPipe(updateAgentSchema)) body: z.infer<typeof updateAgentSchema>,
    @Headers('if-match') ifMatch: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const agent = await this.agents.update(parseWith(slug, id, 'id'), body, expectedVersion(ifMatch, body.version), actorOf(principal));
    reply.header('etag', etagFor(agent.version));
    return agent;
  }

  @Delete(':id')
  @RequireRole('editor')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Headers('if-match') ifMatch: string | undefined, @CurrentPrincipal() principal: Principal) {
    await this.agents.delete(parseWith(slug, id, 'id'), expectedVersion(ifMatch), actorOf(principal));
  }
}
