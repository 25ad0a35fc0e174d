/** Every error the service answers with on purpose carries one of these codes. */
export type ErrorCode =
  | 'bad_request'
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'quota_exceeded'
  | 'gone'
  | 'precondition_failed'
  | 'precondition_required'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'request_timeout'
  | 'uri_too_long'
  | 'request_header_fields_too_large'
  | 'too_many_requests'
  | 'service_unavailable'
  | 'internal';

export interface FieldError {
  /** Dotted path of the offending field, e.g. `model.temperature`; `(body)` for the whole body. */
  readonly field: string;
  readonly message: string;
}

const TITLES: Record<ErrorCode, string> = {
  bad_request: 'Bad request',
  validation_failed: 'Validation failed',
  unauthorized: 'Authentication required',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  quota_exceeded: 'Quota exceeded',
  gone: 'Gone',
  precondition_failed: 'Precondition failed',
  precondition_required: 'Precondition required',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  request_timeout: 'Request timeout',
  uri_too_long: 'URI too long',
  request_header_fields_too_large: 'Request header fields too large',
  too_many_requests: 'Too many requests',
  service_unavailable: 'Service unavailable',
  internal: 'Internal server error',
};

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  quota_exceeded: 409,
  gone: 410,
  precondition_failed: 412,
  precondition_required: 428,
  payload_too_large: 413,
  unsupported_media_type: 415,
  request_timeout: 408,
  uri_too_long: 414,
  request_header_fields_too_large: 431,
  too_many_requests: 429,
  service_unavailable: 503,
  internal: 500,
};

/** What a DomainError may carry besides its code and detail. */
export interface DomainErrorOptions {
  /** Per-field problems (validation); the problem's `errors` member. */
  readonly errors?: readonly FieldError[];
  /** Response headers, e.g. `retry-after` or `www-authenticate`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Extra problem members (RFC 9457 extensions), e.g. a cursor to resume from. */
  readonly extensions?: Readonly<Record<string, unknown>>;
}

/** A failure the service reports to the caller; mapped to problem+json in one filter. */
export class DomainError extends Error {
  readonly status: number;
  readonly title: string;
  readonly errors: readonly FieldError[];
  readonly headers: Readonly<Record<string, string>>;
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    options: DomainErrorOptions = {},
  ) {
    super(detail);
    this.name = 'DomainError';
    this.status = STATUS[code];
    this.title = TITLES[code];
    this.errors = options.errors ?? [];
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  static validation(errors: FieldError[]): DomainError {
    const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    return new DomainError('validation_failed', detail, { errors });
  }

  static field(field: string, message: string): DomainError {
    return DomainError.validation([{ field, message }]);
  }

  static notFound(what: string, id: string): DomainError {
    return new DomainError('not_found', `${what} "${id}" does not exist`);
  }

  static conflict(detail: string): DomainError {
    return new DomainError('conflict', detail);
  }

  static stale(what: string, id: string, current: number): DomainError {
    return new DomainError('precondition_failed', `${what} "${id}" is at version ${current}; the If-Match version is stale`);
  }
}

export function codeForStatus(status: number): ErrorCode {
  const found = (Object.keys(STATUS) as ErrorCode[]).find((code) => STATUS[code] === status && code !== 'validation_failed' && code !== 'quota_exceeded');
  return found ?? (status >= 500 ? 'internal' : 'bad_request');
}
