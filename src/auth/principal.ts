import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Role } from '../events/event-catalog.js';

/** Who is calling: an API key or a logged-in user. */
export interface Principal {
  readonly kind: 'api_key' | 'user';
  /** Stable id for per-caller limits (`key:<uuid>` or `user:<uuid>`). */
  readonly id: string;
  readonly name: string;
  readonly role: Role;
}

export function actorOf(principal: Principal): string {
  return principal.kind === 'api_key' ? `api_key:${principal.name}` : `user:${principal.name}`;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export const REQUIRED_ROLE = 'registry:required-role';
export const PUBLIC_ROUTE = 'registry:public';

/** The least role a route needs; routes without it need `viewer`. */
export const RequireRole = (role: Role) => SetMetadata(REQUIRED_ROLE, role);
/** No authentication (health probes, login). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The authenticated caller of this request (set by AuthGuard). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest>();
  if (!request.principal) throw new Error('CurrentPrincipal used on a public route');
  return request.principal;
});
