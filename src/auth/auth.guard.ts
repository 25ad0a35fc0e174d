import { type CanActivate, type ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { Role } from './roles.js';
import { Authenticator } from './authenticator.js';
import { PUBLIC_ROUTE, REQUIRED_ROLE } from './principal.js';

/**
 * The global guard. It fails closed: only the contexts it handles explicitly
 * can pass, so a WebSocket gateway or microservice handler added later is
 * denied until its authentication is written here (Socket.IO authenticates
 * its handshake with Authenticator and checks the origin with
 * `checkOrigin`). HTTP: public routes pass; every other route needs a
 * principal — normally set by the `onRequest` hook before the body was read,
 * else authenticated here with the same Authenticator — with the route's role.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger('AuthGuard');

  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: Authenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    switch (context.getType()) {
      case 'http':
        return this.http(context);
      default:
        this.logger.warn(`denied a ${context.getType()} call to ${context.getClass().name}.${context.getHandler().name}: no authentication for this context`);
        return false;
    }
  }

  private async http(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = request.principal ?? (await this.authenticator.authenticate(request));
    this.authenticator.authorize(principal, this.reflector.getAllAndOverride<Role>(REQUIRED_ROLE, targets) ?? 'viewer');
    request.principal = principal;
    return true;
  }
}
