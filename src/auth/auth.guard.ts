import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { DomainError } from '../common/domain-error.js';
import { type Role, roleAtLeast } from '../events/event-catalog.js';
import { ApiKeyService } from './api-key.service.js';
import { type Principal, PUBLIC_ROUTE, REQUIRED_ROLE } from './principal.js';
import { readCookie, SESSION_COOKIE } from './session-cookie.js';
import { UserService } from './user.service.js';

/**
 * Authenticates every route (API key in `Authorization: Bearer` or
 * `X-API-Key`, or the GUI session cookie), then checks the route's role.
 * 401: no or bad credentials. 403: authenticated but the role is too low.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeyService,
    private readonly users: UserService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = await this.authenticate(request);
    const required = this.reflector.getAllAndOverride<Role>(REQUIRED_ROLE, targets) ?? 'viewer';
    if (!roleAtLeast(principal.role, required)) {
      throw new DomainError('forbidden', `this operation needs the ${required} role; you have ${principal.role}`);
    }
    request.principal = principal;
    return true;
  }

  async authenticate(request: FastifyRequest): Promise<Principal> {
    const key = bearerOrHeaderKey(request.headers.authorization, request.headers['x-api-key']);
    if (key !== undefined) {
      const principal = await this.apiKeys.authenticate(key);
      if (!principal) throw unauthorized('the API key is invalid or revoked');
      return principal;
    }
    const token = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (token) {
      const principal = await this.users.authenticateSession(token);
      if (!principal) throw unauthorized('the session has expired; log in again');
      return principal;
    }
    throw unauthorized('send an API key (Authorization: Bearer <key>) or log in');
  }
}

function unauthorized(detail: string): DomainError {
  return new DomainError('unauthorized', detail, [], { 'www-authenticate': 'Bearer realm="agentic-registry"' });
}

function bearerOrHeaderKey(authorization: string | undefined, xApiKey: string | string[] | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!m) throw unauthorized('Authorization must be "Bearer <key>"');
    return m[1];
  }
  if (typeof xApiKey === 'string' && xApiKey !== '') return xApiKey;
  return undefined;
}
