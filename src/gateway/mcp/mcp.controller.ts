import { All, Controller, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentPrincipal, type Principal } from '../../auth/principal.js';
import { McpGatewayService } from './mcp-gateway.service.js';

/**
 * `/mcp`, the Streamable HTTP MCP endpoint (POST messages, GET the server's
 * stream or resume one with Last-Event-ID, DELETE the session). Authenticated
 * by the onRequest hook before the body is read (an API key, or the session
 * cookie with an allowed Origin); what the caller reaches is decided per call.
 */
@Controller('mcp')
export class McpController {
  constructor(private readonly gateway: McpGatewayService) {}

  @All()
  async mcp(@CurrentPrincipal() principal: Principal, @Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.gateway.handle(request, reply, principal);
  }
}
