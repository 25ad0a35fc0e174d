import { Inject, Injectable } from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { DomainError } from '../common/domain-error.js';
import { checkOrigin, isUnsafeMethod } from '../common/origin-policy.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { type Role, roleAtLeast } from './roles.js';
import { ApiKeyService } from './api-key.service.js';
import { CredentialCache } from './credential-cache.js';
import type { Principal } from './principal.js';
import { readCookie, SESSION_COOKIE } from './session-cookie.js';
import { UserService } from './user.service.js';

/** What authentication reads of a request (a FastifyRequest has all of it; so will a Socket.IO handshake). */
export interface AuthRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** `http`/`https` as the client used it (X-Forwarded-Proto from a trusted proxy). */
  readonly protocol?: string;
  /** Host as the client addressed it (X-Forwarded-Host from a trusted proxy). */
  readonly host?: string;
}

export function unauthorized(detail: string): DomainError {
  return new DomainError('unauthorized', detail, { headers: { 'www-authenticate': 'Bearer realm="agentic-registry"' } });
}

/**
 * The one authentication implementation, used by the `onRequest` hook (before
 * the body is read) and by AuthGuard: an API key in `Authorization: Bearer`
 * or `X-API-Key`, or the GUI session cookie. A cookie-authenticated unsafe
 * request must also come from an allowed origin (CSRF).
 * 401: no or bad credentials. 403: refused origin, or a role too low (`authorize`).
 */
@Injectable()
export class Authenticator {
  constructor(
    private readonly apiKeys: ApiKeyService,
    private readonly users: UserService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly cache: CredentialCache,
  ) {}

  async authenticate(request: AuthRequest): Promise<Principal> {
    const key = bearerOrHeaderKey(request.headers.authorization, request.headers['x-api-key']);
    if (key !== undefined) {
      const principal = await this.cache.get('key', key, () => this.apiKeys.authenticate(key));
      if (!principal) throw unauthorized('the API key is invalid, expired or revoked');
      return principal;
    }
    const token = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (token) {
      // Refused before the session lookup: a forged cross-site request learns nothing.
      if (isUnsafeMethod(request.method)) this.assertOrigin(request);
      const principal = await this.cache.get('session', token, () => this.users.authenticateSession(token));
      if (!principal) throw unauthorized('the session has expired; log in again');
      return principal;
    }
    throw unauthorized('send an API key (Authorization: Bearer <key>) or log in');
  }

  /** 403 unless `principal` has at least `required`. */
  authorize(principal: Principal, required: Role): void {
    if (!roleAtLeast(principal.role, required)) {
      throw new DomainError('forbidden', `this operation needs the ${required} role; you have ${principal.role}`);
    }
  }

  /** 403 unless the request's Origin (or Referer) is allowed (ALLOWED_ORIGINS, default the service's own origin). */
  assertOrigin(request: AuthRequest): void {
    const verdict = checkOrigin(request, this.config.security.allowedOrigins);
    if (!verdict.allowed) {
      throw new DomainError('forbidden', `cross-origin request refused: ${verdict.reason}`, { errors: [{ field: 'Origin', message: verdict.reason }] });
    }
  }

  /**
   * Public unsafe routes (login, logout): a browser request from a foreign
   * origin is refused (login CSRF); a request without Origin/Referer (a
   * non-browser client) passes.
   */
  assertOriginIfPresent(request: AuthRequest): void {
    if (!isUnsafeMethod(request.method)) return;
    if (request.headers.origin === undefined && request.headers.referer === undefined) return;
    this.assertOrigin(request);
  }
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
