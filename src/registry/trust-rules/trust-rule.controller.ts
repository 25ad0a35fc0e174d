import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { actorOf, CurrentPrincipal, type Principal, RequireRole } from '../../auth/principal.js';
import { etagFor, expectedVersion } from '../../common/etag.js';
import { parseWith, ZodPipe } from '../../common/zod-validation.pipe.js';
import { READ_ROLE } from '../../auth/roles.js';
import { createTrustRuleSchema, listTrustRulesQuery, trustRuleId, updateTrustRuleSchema } from './trust-rule.schemas.js';
import { TrustRuleService } from './trust-rule.service.js';

/** Trust rules are security policy: reading needs editor (READ_ROLE), writing needs admin. */
@Controller('api/v1/trust-rules')
@RequireRole(READ_ROLE.trust_rule)
export class TrustRuleController {
  constructor(private readonly rules: TrustRuleService) {}

  @Post()
  @RequireRole('admin')
  async create(
    @Body(new ZodPipe(createTrustRuleSchema)) body: z.infer<typeof createTrustRuleSchema>,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const rule = await this.rules.create(body, actorOf(principal));
    reply.status(201).header('etag', etagFor(rule.version)).header('location', `/api/v1/trust-rules/${rule.id}`);
    return rule;
  }

  @Get()
  async list(@Query(new ZodPipe(listTrustRulesQuery, 'query')) query: z.infer<typeof listTrustRulesQuery>) {
    return this.rules.list(query.limit, query.cursor, { agentId: query.agentId, mcpServerId: query.mcpServerId });
  }

  @Get(':id')
  async get(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const rule = await this.rules.get(parseWith(trustRuleId, id, 'id'));
    reply.header('etag', etagFor(rule.version));
    return rule;
  }

  @Patch(':id')
  @RequireRole('admin')
  async update(
    @Param('id') id: string,
    @Body(new ZodPipe(updateTrustRuleSchema)) body: z.infer<typeof updateTrustRuleSchema>,
    @Headers('if-match') ifMatch: string | undefined,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const rule = await this.rules.update(parseWith(trustRuleId, id, 'id'), body, expectedVersion(ifMatch, body.version), actorOf(principal));
    reply.header('etag', etagFor(rule.version));
    return rule;
  }

  @Delete(':id')
  @RequireRole('admin')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Headers('if-match') ifMatch: string | undefined, @CurrentPrincipal() principal: Principal) {
    await this.rules.delete(parseWith(trustRuleId, id, 'id'), expectedVersion(ifMatch), actorOf(principal));
  }
}
