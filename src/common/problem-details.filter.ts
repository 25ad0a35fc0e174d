import { type ArgumentsHost, Catch, type ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from './domain-error.js';
import { PROBLEM_CONTENT_TYPE, toDomainError, toProblem } from './problem-details.js';

/** The one place errors become responses: RFC 9457 problem+json with a correlation id. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    sendProblem(request, reply, exception, this.logger);
  }
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, exception: unknown, logger: Logger): void {
  const error = toDomainError(exception);
  if (error.status >= 500 && !(exception instanceof DomainError)) {
    // Unexpected: the stack helps. (Expected 5xx, such as 503 while draining, are one line below.)
    logger.error(`${request.method} ${request.url.split('?')[0]} [${request.id}]: ${(exception as Error)?.stack ?? String(exception)}`);
  } else if (error.status >= 500) {
    logger.warn(`${error.status} ${error.code}: ${error.detail}`);
  } else {
    logger.debug(`${error.status} ${error.code}: ${error.detail}`);
  }
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  // The URL is not echoed when it is what was wrong with the request (too long, badly encoded).
  const path = error.status === 414 || error.errors.some((e) => e.field === '(url)') ? undefined : request.url.split('?')[0];
  void reply
    .status(error.status)
    .headers(error.headers)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(toProblem(error, path, String(request.id))));
}
