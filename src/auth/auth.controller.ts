import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DomainError } from '../common/domain-error.js';
import { parseWith, ZodPipe } from '../common/zod-validation.pipe.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiKeyService } from './api-key.service.js';
import { createApiKeySchema, createUserSchema, loginSchema, updateUserSchema, uuidParam } from './auth.schemas.js';
import { actorOf, CurrentPrincipal, type Principal, Public, RequireRole } from './principal.js';
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sessionCookie } from './session-cookie.js';
import { UserService } from './user.service.js';

@Controller('api/v1/auth')
export class AuthController {
  constructor(
    private readonly users: UserService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  async login(
    @Body(new ZodPipe(loginSchema)) body: z.infer<typeof loginSchema>,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    // request.ip: the client address, through proxies trusted by TRUST_PROXY only.
    const session = await this.users.login(body.username, body.password, request.ip);
    if (!session) throw new DomainError('unauthorized', 'wrong username or password');
    reply.header('set-cookie', sessionCookie(session.token, this.config.session.ttlMs, this.config.session.cookieSecure)).header('cache-control', 'no-store');
    return { user: session.user, expiresAt: session.expiresAt.toISOString() };
  }

  @Public()
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const token = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (token) await this.users.logout(token);
    reply.header('set-cookie', clearedSessionCookie(this.config.session.cookieSecure)).header('cache-control', 'no-store');
  }

  @Get('me')
  me(@CurrentPrincipal() principal: Principal) {
    return { kind: principal.kind, name: principal.name, role: principal.role };
  }
}

@Controller('api/v1/api-keys')
@RequireRole('admin')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeyService) {}

  @Post()
  async create(
    @Body(new ZodPipe(createApiKeySchema)) body: z.infer<typeof createApiKeySchema>,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const { key, record } = await this.apiKeys.create(body.name, body.role, actorOf(principal), undefined, body.expiresAt ?? null, body.agentId ?? null);
    // The one response that carries the clear key: no cache may keep it.
    reply.header('cache-control', 'no-store');
    return { ...record, key };
  }

  @Get()
  async list() {
    return { items: await this.apiKeys.list() };
  }

  @Delete(':id')
  @HttpCode(204)
  async revoke(@Param('id') id: string): Promise<void> {
    await this.apiKeys.revoke(parseWith(uuidParam, id, 'id'));
  }
}

@Controller('api/v1/users')
@RequireRole('admin')
export class UsersController {
  constructor(private readonly users: UserService) {}

  @Post()
  async create(@Body(new ZodPipe(createUserSchema)) body: z.infer<typeof createUserSchema>) {
    return this.users.create(body.username, body.password, body.role);
  }

  @Get()
  async list() {
    return { items: await this.users.list() };
  }

  /** `{role?, password?}`: a new role reaches the user's open streams; a new password ends every session. */
  @Patch(':id')
  async update(@Param('id') id: string, @Body(new ZodPipe(updateUserSchema)) body: z.infer<typeof updateUserSchema>) {
    return this.users.update(parseWith(uuidParam, id, 'id'), body);
  }

  @Delete(':id')
  @HttpCode(204)
  async delete(@Param('id') id: string): Promise<void> {
    await this.users.delete(parseWith(uuidParam, id, 'id'));
  }
}
