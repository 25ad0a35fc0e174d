import { HttpException } from '@nestjs/common';
import { DomainError, codeForStatus, type FieldError } from './domain-error.js';

/** RFC 9457 problem details, as every error response of the service is shaped. */
export interface ProblemDetails {
  [extension: string]: unknown;
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  correlationId?: string;
  errors?: readonly FieldError[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
}

function isFastifyError(error: unknown): error is FastifyLikeError {
  const code = (error as FastifyLikeError | undefined)?.code;
  return typeof code === 'string' && code.startsWith('FST_');
}

/** Maps anything thrown to a DomainError; unknown errors become a generic 500 (never leaking internals). */
export function toDomainError(error: unknown): DomainError {
  if (error instanceof DomainError) return error;
  // Nest wraps Fastify's own errors (body parsing, size limit) in an HttpException.
  if (error instanceof HttpException && (isFastifyError(error.cause) || error.cause instanceof DomainError)) return toDomainError(error.cause);
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const response = error.getResponse();
    const message = typeof response === 'object' && response !== null && 'message' in response ? String(response.message) : error.message;
    return new DomainError(codeForStatus(status), message);
  }
  if (isFastifyError(error)) {
    const fe = error;
    switch (fe.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return new DomainError('bad_request', 'Request body is not valid JSON', { errors: [{ field: '(body)', message: 'malformed JSON' }] });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return new DomainError('payload_too_large', 'Request body exceeds the size limit');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return new DomainError('unsupported_media_type', 'Content-Type must be application/json');
      // Router errors (frameworkErrors): never echo the URL back.
      case 'FST_ERR_BAD_URL':
        return new DomainError('bad_request', 'The URL is not validly percent-encoded', { errors: [{ field: '(url)', message: 'bad percent-encoding' }] });
      case 'FST_ERR_MAX_PARAM_LENGTH':
        return new DomainError('uri_too_long', 'A path segment of the URL is too long');
      case 'FST_ERR_ASYNC_CONSTRAINT':
        return new DomainError('internal', 'An unexpected error occurred');
      default:
        if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
          return new DomainError(codeForStatus(fe.statusCode), fe.message ?? 'Bad request');
        }
    }
  }
  if (error instanceof SyntaxError) {
    return new DomainError('bad_request', 'Request body is not valid JSON', { errors: [{ field: '(body)', message: 'malformed JSON' }] });
  }
  return new DomainError('internal', 'An unexpected error occurred');
}

export function toProblem(error: DomainError, instance?: string, correlationId?: string): ProblemDetails {
  const problem: ProblemDetails = {
    ...error.extensions,
    type: `https://agentic-registry.dev/problems/${error.code.replace(/_/g, '-')}`,
    title: error.title,
    status: error.status,
    detail: error.detail,
    code: error.code,
  };
  if (instance) problem.instance = instance;
  if (correlationId) problem.correlationId = correlationId;
  if (error.errors.length > 0) problem.errors = error.errors;
  return problem;
}

/**
 * Node's HTTP parser rejected a request before any framework code saw it
 * (`clientError`): the status for it, or undefined when no response should be
 * written (the peer reset the connection).
 */
export function clientErrorProblem(error: NodeJS.ErrnoException): DomainError | undefined {
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new DomainError('request_timeout', 'The request was not received in time');
    case 'HPE_HEADER_OVERFLOW':
      return new DomainError('request_header_fields_too_large', 'The request line and headers exceed the size limit');
    case 'HPE_URI_TOO_LONG':
      return new DomainError('uri_too_long', 'The URL is too long');
    default:
      return new DomainError('bad_request', 'The request is not valid HTTP/1.1');
  }
}

/** A complete HTTP/1.1 response with a problem+json body, for writing straight to a socket. */
export function rawProblemResponse(error: DomainError): string {
  const body = JSON.stringify(toProblem(error));
  return (
    `HTTP/1.1 ${error.status} ${error.title}\r\n` +
    `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Cache-Control: no-store\r\n' +
    'Connection: close\r\n\r\n' +
    body
  );
}
