import type { Discovery, Me, Notice, Problem } from './types';

/**
 * How the GUI authenticates: the HttpOnly session cookie (the browser attaches
 * it; unsafe requests carry the page's Origin for the CSRF check), or an API
 * key held in memory only (never stored), sent as `Authorization: Bearer`.
 */
export type Credentials = { kind: 'cookie' } | { kind: 'key'; key: string };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
    readonly retryAfterS?: number,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }

  /** 412: the row changed since it was loaded (optimistic concurrency). */
  get isConflict(): boolean {
    return this.status === 412;
  }
}

export interface ApiResult<T> {
  status: number;
  body: T;
  etag?: string;
}

export const API = '/api/v1';

/** Called when a request finds the credential gone (session expired, key revoked): back to the login page. */
type Unauthorized = (error: ApiError) => void;

export class Api {
  private onUnauthorized: Unauthorized = () => undefined;

  constructor(readonly credentials: Credentials) {}

  setUnauthorizedHandler(handler: Unauthorized): void {
    this.onUnauthorized = handler;
  }

  async request<T>(method: string, path: string, options: { body?: unknown; ifMatch?: number; signal?: AbortSignal } = {}): Promise<ApiResult<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.credentials.kind === 'key') headers.authorization = `Bearer ${this.credentials.key}`;
    if (options.ifMatch !== undefined) headers['if-match'] = `"${options.ifMatch}"`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const response = await fetch(`${API}${path}`, { method, headers, body, credentials: 'same-origin', signal: options.signal });
    const text = await response.text();
    const parsed: unknown = text !== '' && (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const problem = { status: response.status, ...(typeof parsed === 'object' && parsed ? (parsed as Partial<Problem>) : {}) };
      const retryAfter = Number(response.headers.get('retry-after'));
      const error = new ApiError(response.status, problem, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
      if (response.status === 401 && !path.startsWith('/auth/login')) this.onUnauthorized(error);
      throw error;
    }
    return { status: response.status, body: parsed as T, etag: response.headers.get('etag') ?? undefined };
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { signal }).then((r) => r.body);
  }

  me(): Promise<Me> {
    return this.get<Me>('/auth/me');
  }

  discovery(): Promise<Discovery> {
    return this.get<Discovery>('/discovery');
  }

  /** The admin notices still in force (`[]` when the service has none, or no notices endpoint yet). */
  async notices(): Promise<Notice[]> {
    try {
      const body = await this.get<unknown>('/notices');
      const items = Array.isArray(body)
        ? body
        : ((body as { items?: unknown[]; notices?: unknown[] } | undefined)?.items ?? (body as { notices?: unknown[] })?.notices ?? []);
      return items.map((item) => toNotice(item)).filter((n): n is Notice => n !== undefined);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return [];
      throw error;
    }
  }
}

/** A notice from `GET /notices` or from a `system.*` event's `data`. */
export function toNotice(raw: unknown, kind?: string): Notice | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const k = (r.kind ?? r.type ?? kind) as string | undefined;
  if (typeof r.id !== 'string' && typeof r.id !== 'number') return undefined;
  if (typeof r.message !== 'string') return undefined;
  return {
    id: String(r.id),
    kind: k === 'system.maintenance' ? 'system.maintenance' : 'system.alert',
    message: r.message,
    expiresAt: typeof r.expiresAt === 'string' ? r.expiresAt : null,
  };
}

export async function login(username: string, password: string): Promise<void> {
  const response = await fetch(`${API}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ username, password }),
    credentials: 'same-origin',
  });
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as Partial<Problem>;
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new ApiError(response.status, { status: response.status, ...problem }, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
  }
}

export async function logout(): Promise<void> {
  await fetch(`${API}/auth/logout`, { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
}

/** One line for an error: the problem's detail and its field errors. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.isConflict) return 'Changed by someone else — reload';
    const fields = error.problem.errors?.map((e) => `${e.field}: ${e.message}`).join('; ');
    const base = error.problem.detail ?? error.problem.title ?? `HTTP ${error.status}`;
    return fields ? `${base} (${fields})` : base;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
