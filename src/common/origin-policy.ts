/**
 * Cross-site request forgery defence for credentials a browser attaches by
 * itself (the GUI session cookie, and the Socket.IO handshake later): the
 * request's `Origin` (or, without one, the origin of its `Referer`) must be in
 * the allow-list, `ALLOWED_ORIGINS`, or — when that is unset — be the
 * service's own origin. A request that names no origin at all is refused:
 * browsers send `Origin` on every cross-origin and on same-origin unsafe
 * requests, so only a non-browser client omits it, and such a client has no
 * business using the browser's cookie. API-key requests are not subject to
 * this (a browser never attaches an API key by itself).
 */

import type { IncomingHttpHeaders } from 'node:http';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * An origin as browsers serialize it (`https://admin.example.com`,
 * `http://127.0.0.1:3000`): lower-case scheme and host, no default port.
 * Undefined for anything else: `null` (opaque origins), other schemes, or a
 * value with credentials, a path, a query or a fragment.
 */
export function normalizeOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined;
  if (url.pathname !== '/') return undefined;
  const port = url.port === '' || url.port === DEFAULT_PORTS[url.protocol] ? '' : `:${url.port}`;
  return `${url.protocol}//${url.hostname}${port}`;
}

/** The origin a request claims: `Origin`, else the origin of `Referer`; undefined when neither gives one. */
export function claimedOrigin(headers: IncomingHttpHeaders): string | undefined {
  const origin = headers.origin;
  if (typeof origin === 'string' && origin !== '') return normalizeOrigin(origin) ?? 'invalid';
  const referer = headers.referer;
  if (typeof referer === 'string' && referer !== '') {
    try {
      return normalizeOrigin(new URL(referer).origin) ?? 'invalid';
    } catch {
      return 'invalid';
    }
  }
  return undefined;
}

/** The service's own origin as the client addressed it (`protocol` and `host` honour TRUST_PROXY). */
export function ownOrigin(protocol: string | undefined, host: string | undefined): string | undefined {
  if (!host) return undefined;
  return normalizeOrigin(`${protocol === 'https' ? 'https' : 'http'}://${host}`);
}

export type OriginVerdict = { allowed: true; origin: string } | { allowed: false; origin: string | undefined; reason: string };

/**
 * The one check, for HTTP requests and the Socket.IO handshake alike.
 * `allowList` is `AppConfig.security.allowedOrigins` (undefined = own origin only).
 */
export function checkOrigin(
  request: { headers: IncomingHttpHeaders; protocol?: string; host?: string },
  allowList: readonly string[] | undefined,
): OriginVerdict {
  const origin = claimedOrigin(request.headers);
  if (origin === undefined) return { allowed: false, origin, reason: 'the request has no Origin or Referer header' };
  if (origin === 'invalid') return { allowed: false, origin: undefined, reason: 'the Origin (or Referer) header is not a valid http(s) origin' };
  const allowed = allowList ?? [ownOrigin(request.protocol, request.host ?? headerString(request.headers.host))].filter((o): o is string => !!o);
  if (allowed.includes(origin)) return { allowed: true, origin };
  return { allowed: false, origin, reason: `origin ${origin} is not allowed (ALLOWED_ORIGINS)` };
}

/** Whether `method` may change state (only these need the origin check). */
export function isUnsafeMethod(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

function headerString(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
