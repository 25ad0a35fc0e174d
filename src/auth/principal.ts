import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { FASTIFY_ROUTE_CONFIG_METADATA } from '@nestjs/platform-fastify/constants.js';
import type { FastifyRequest } from 'fastify';
import type { Role } from './roles.js';

/** Who is calling: an API key or a logged-in user. */
export interface Principal {
  readonly kind: 'api_key' | 'user';
  /** Stable id for per-caller limits (`key:<uuid>` or `user:<uuid>`). */
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /**
   * The credential this request was authenticated with: `key:<uuid>` or
   * `session:<sha256 of the token>`. What the CredentialWatcher re-checks for
   * as long as a stream opened with it stays open.
   */
  readonly credential: string;
  /** How the credential came: a browser attaches `cookie` by itself (CSRF applies), never `api_key`. */
  readonly via: 'api_key' | 'cookie';
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

/**
 * What the authentication hook needs to know about a route before the body is
 * read, carried in the Fastify route's `config` (Nest copies it from the
 * handler's metadata): public or not, the least role, and whether it is the
 * metrics endpoint (its own protection).
 */
export interface RouteAuth {
  public?: boolean;
  role?: Role;
  metrics?: boolean;
}
export const ROUTE_AUTH = 'registryAuth';

/**
 * Merges `patch` into the Fastify route config of a method, or — used on a
 * class — of every method of the class that does not set those keys itself
 * (method decorators run first; the method's own value wins, as with
 * `Reflector.getAllAndOverride`).
 */
function routeAuth(patch: RouteAuth): ClassDecorator & MethodDecorator {
  const merge = (fn: object, own: boolean) => {
    const config = (Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, fn) as Record<string, unknown> | undefined) ?? {};
    const current = (config[ROUTE_AUTH] as RouteAuth | undefined) ?? {};
    const next: RouteAuth = own ? { ...current, ...patch } : { ...patch, ...current };
    Reflect.defineMetadata(FASTIFY_ROUTE_CONFIG_METADATA, { ...config, [ROUTE_AUTH]: next }, fn);
  };
  return ((target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (descriptor) {
      merge(descriptor.value as object, true);
      return descriptor;
    }
    const proto = (target as { prototype: Record<string, unknown> }).prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const fn = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
      if (name !== 'constructor' && typeof fn === 'function') merge(fn, false);
    }
    return undefined;
  }) as ClassDecorator & MethodDecorator;
}

/** The least role a route needs; routes without it need `viewer`. */
export const RequireRole = (role: Role) => applyDecorators(SetMetadata(REQUIRED_ROLE, role), routeAuth({ role }));
/** No authentication (health probes, login). */
export const Public = () => applyDecorators(SetMetadata(PUBLIC_ROUTE, true), routeAuth({ public: true }));
/** The Prometheus endpoint: open, unless METRICS_TOKEN or METRICS_PORT protect it (checked by the hook). */
export const MetricsEndpoint = () => applyDecorators(SetMetadata(PUBLIC_ROUTE, true), routeAuth({ public: true, metrics: true }));

/** The authenticated caller of this request (set by the authentication hook or AuthGuard). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest>();
  if (!request.principal) throw new Error('CurrentPrincipal used on a public route');
  return request.principal;
});
