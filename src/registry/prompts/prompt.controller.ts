import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { actorOf, CurrentPrincipal, type Principal, RequireRole } from '../../auth/principal.js';
import { parseWith, ZodPipe } from '../../common/zod-validation.pipe.js';
import { slug } from '../registry.schemas.js';
import { createPromptSchema, listPromptsQuery, promptVersionParam } from './prompt.schemas.js';
import { PromptService } from './prompt.service.js';

@Controller('api/v1/agents/:id/prompts')
export class PromptController {
  constructor(private readonly prompts: PromptService) {}

  @Post()
  @RequireRole('editor')
  async create(
    @Param('id') id: string,
    @Body(new ZodPipe(createPromptSchema)) body: z.infer<typeof createPromptSchema>,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const prompt = await this.prompts.create(parseWith(slug, id, 'id'), body, actorOf(principal));
    reply.status(201).header('location', `/api/v1/agents/${prompt.agentId}/prompts/${prompt.version}`);
    return prompt;
  }

  @Get()
  async list(@Param('id') id: string, @Query(new ZodPipe(listPromptsQuery, 'query')) query: z.infer<typeof listPromptsQuery>) {
    return this.prompts.list(parseWith(slug, id, 'id'), query.limit, query.cursor);
  }

  @Get(':version')
  async get(@Param('id') id: string, @Param('version') version: string) {
    return this.prompts.get(parseWith(slug, id, 'id'), parseWith(promptVersionParam, version, 'version'));
  }

  @Post(':version/activate')
  @RequireRole('editor')
  @HttpCode(200)
  async activate(@Param('id') id: string, @Param('version') version: string, @CurrentPrincipal() principal: Principal) {
    return this.prompts.activate(parseWith(slug, id, 'id'), parseWith(promptVersionParam, version, 'version'), actorOf(principal));
  }

  @Delete(':version')
  @RequireRole('editor')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Param('version') version: string, @CurrentPrincipal() principal: Principal): Promise<void> {
    await this.prompts.delete(parseWith(slug, id, 'id'), parseWith(promptVersionParam, version, 'version'), actorOf(principal));
  }
}
