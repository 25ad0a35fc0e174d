import { HttpError } from './errors.js';

/** Where the service is and how to authenticate. Every function of this library takes these fields. */
export interface ConnectionOptions {
  /** The service's origin, e.g. `http://127.0.0.1:3000`. Omit it in a browser page served by the service (same origin). */
  baseUrl?: string;
  /** An API key, sent as `Authorization: Bearer`. Omit it in a browser signed in with the session cookie. */
  apiKey?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

/** The absolute (or, without `baseUrl`, origin-relative) URL of `/api/v1` + `path`; a full URL or absolute path is taken as it is. */
export function apiUrl(c: ConnectionOptions, path: string): string {
  const base = (c.baseUrl ?? '').replace(/\/+$/, '');
  if (/^https?:\/\//.test(path)) return path;
  if (path.startsWith('/api/')) return `${base}${path}`;
  return `${base}/api/v1${path.startsWith('/') ? path : `/${path}`}`;
}

export function authHeaders(c: ConnectionOptions, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { ...c.headers, ...extra };
  if (c.apiKey) headers.authorization = `Bearer ${c.apiKey}`;
  return headers;
}

export function fetchOf(c: ConnectionOptions): typeof fetch {
  const f = c.fetch ?? globalThis.fetch;
  // Called unbound: a browser's fetch refuses a `this` other than the window.
  return (input, init) => f(input, init);
}

/** Milliseconds from a `Retry-After` header (seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** An `HttpError` from a failed response, with its problem+json body when it has one. */
export async function httpError(res: Response): Promise<HttpError> {
  let problem: HttpError['problem'];
  try {
    const text = await res.text();
    problem = text ? (JSON.parse(text) as HttpError['problem']) : undefined;
  } catch {
    problem = undefined;
  }
  return new HttpError(res.status, problem, retryAfterMs(res.headers.get('retry-after')));
}

/** One JSON request to the API; resolves with the parsed body of a 2xx answer, rejects with `HttpError` otherwise. */
export async function requestJson<T>(
  c: ConnectionOptions,
  method: string,
  path: string,
  options: { body?: unknown; signal?: AbortSignal; okStatuses?: number[] } = {},
): Promise<{ status: number; body: T }> {
  const headers = authHeaders(c, { accept: 'application/json' });
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetchOf(c)(apiUrl(c, path), {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
    credentials: 'same-origin',
  });
  if (!res.ok && !options.okStatuses?.includes(res.status)) throw await httpError(res);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}
