import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Authenticator } from './authenticator.js';
import { MetricsAccess } from './metrics-access.js';
import { ROUTE_AUTH, type RouteAuth } from './principal.js';

/**
 * Authenticates in Fastify's `onRequest` hook, i.e. before the body is read
 * and parsed: an unauthenticated caller gets its 401 (and a caller whose role
 * is too low its 403) without the server receiving up to BODY_LIMIT_BYTES of
 * JSON first. It uses the same Authenticator as AuthGuard and stores the
 * principal on the request, so the guard does not authenticate twice. What a
 * route needs comes from its Fastify route config (`@Public`, `@RequireRole`,
 * `@MetricsEndpoint` put it there); unknown routes fall through to the 404.
 */
export function installAuthHook(fastify: FastifyInstance, authenticator: Authenticator, metrics: MetricsAccess): void {
  fastify.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.is404) return;
    const route = (request.routeOptions.config as unknown as Record<string, unknown> | undefined)?.[ROUTE_AUTH] as RouteAuth | undefined;
    if (route?.metrics) {
      metrics.assertMainPort(request.headers);
      return;
    }
    if (route?.public) {
      authenticator.assertOriginIfPresent(request);
      return;
    }
    const principal = await authenticator.authenticate(request);
    authenticator.authorize(principal, route?.role ?? 'viewer');
    request.principal = principal;
  });
}
