import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DomainError } from '../common/domain-error.js';
import { parseWith, ZodPipe } from '../common/zod-validation.pipe.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiKeyService } from './api-key.service.js';
import { createApiKeySchema, createUserSchema, loginSchema, uuidParam } from './auth.schemas.js';
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
  async login(@Body(new ZodPipe(loginSchema)) body: z.infer<typeof loginSchema>, @Res({ passthrough: true }) reply: FastifyReply) {
    const session = await this.users.login(body.username, body.password);
    if (!session) throw new DomainError('unauthorized', 'wrong username or password');
    reply.header('set-cookie', sessionCookie(session.token, this.config.session.ttlMs, this.config.session.cookieSecure));
    return { user: session.user, expiresAt: session.expiresAt.toISOString() };
  }

  @Public()
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    const token = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (token) await this.users.logout(token);
    reply.header('set-cookie', clearedSessionCookie(this.config.session.cookieSecure));
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
  async create(@Body(new ZodPipe(createApiKeySchema)) body: z.infer<typeof createApiKeySchema>, @CurrentPrincipal() principal: Principal) {
    const { key, record } = await this.apiKeys.create(body.name, body.role, actorOf(principal));
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

  @Delete(':id')
  @HttpCode(204)
  async delete(@Param('id') id: string): Promise<void> {
    await this.users.delete(parseWith(uuidParam, id, 'id'));
  }
}
