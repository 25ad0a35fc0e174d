import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Server as HttpServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server as NetServer, type Socket } from 'node:net';
import { AppModule } from './app.module.js';
import { installAuthHook } from './auth/auth.hook.js';
import { Authenticator } from './auth/authenticator.js';
import { MetricsAccess } from './auth/metrics-access.js';
import { findNul, guardedJsonParser, nulError } from './common/json-body.js';
import { sendProblem } from './common/problem-details.filter.js';
import { clientErrorProblem, rawProblemResponse } from './common/problem-details.js';
import type { AppConfig } from './config/app-config.js';
import { JsonLogger } from './ops/json-logger.js';
import { LifecycleService } from './ops/lifecycle.service.js';
import { requestContext } from './ops/request-context.js';

/** While the server closes: how often connections that went idle since, or never carried a request, are closed. */
const CLOSE_SWEEP_MS = 100;

/**
 * forceCloseConnections: 'idle' closes the connections idle at the moment the
 * server closes, once. Two kinds would still hold a closing server open: one
 * whose answer was still being written then (a stream just ended by its
 * drain), idle a moment later until its keep-alive timeout (72 s); and one a
 * client opened and never sent a byte on, which Node counts as busy until its
 * headers timeout, a check the server's close stops. Until the server has
 * closed, both are closed every CLOSE_SWEEP_MS; a connection with a request
 * under way (a byte of it received) finishes it.
 */
function sweepWhileClosing(server: HttpServer, fastify: FastifyInstance): void {
  const unused = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  fastify.addHook('preClose', (done) => {
    const sweep = setInterval(() => {
      server.closeIdleConnections();
      for (const socket of unused) {
        if (socket.bytesRead > 0) unused.delete(socket);
        else socket.destroy();
      }
    }, CLOSE_SWEEP_MS).unref();
    server.once('close', () => clearInterval(sweep));
    done();
  });
}

/** Builds the application exactly as production runs it (tests use this too). */
export async function createApp(config: AppConfig, databaseUrl: string, jsonLogger = new JsonLogger(config)): Promise<NestFastifyApplication> {
  const logger = new Logger('Http');
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    // Only these peers' X-Forwarded-* are believed (client address for login throttling, own origin for CSRF).
    trustProxy: config.security.trustProxy,
    requestIdHeader: false,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A request that reaches a closing server is served (with Connection: close):
    // a 503 for a POST the proxy already sent would be a failed write it cannot retry.
    return503OnClosing: false,
    // On close: idle keep-alive connections are closed, in-flight requests finish (a
    // POST whose transaction commits still gets its answer). Streams are hijacked
    // and ended by their own drain.
    forceCloseConnections: 'idle',
    // The router's own errors (bad percent-encoding, an over-long path
    // segment) are answered before any hook runs: problem+json too, without
    // echoing the URL.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => sendProblem(request, reply, error, logger),
    // Node's HTTP parser errors (431 headers too large, 400 malformed, 408),
    // while a response can still be written.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Socket) => {
      const problem = clientErrorProblem(error);
      if (problem && socket.writable && !socket.destroyed) socket.end(rawProblemResponse(problem));
      socket.destroySoon();
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, databaseUrl), adapter, {
    // Structured JSON lines (pino) with the replica and request ids; secrets scrubbed.
    logger: jsonLogger,
    bufferLogs: false,
    // JSON only: Fastify's own parser, no urlencoded or text bodies.
    bodyParser: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  fastify.removeContentTypeParser('text/plain');
  // JSON with Fastify's parser and its poisoning checks, plus: an empty body is
  // no body, nesting deeper than MAX_JSON_DEPTH and NUL characters are 400s.
  const baseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, guardedJsonParser(baseJson as never) as never);
  // First of all: the request's id is known to everything it awaits (log lines carry it).
  fastify.addHook('onRequest', (request, _reply, done) => requestContext.run({ requestId: String(request.id) }, done));
  // One access line per answered request (no query string).
  fastify.addHook('onResponse', (request, reply, done) => {
    jsonLogger.access({
      method: request.method,
      path: request.url.split('?')[0].slice(0, 256),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      requestId: String(request.id),
    });
    done();
  });
  // Authentication before the body is read (401/403 without parsing it).
  installAuthHook(fastify, app.get(Authenticator), app.get(MetricsAccess));
  // PostgreSQL cannot store NUL in text: a NUL in the query or the path is a 400 naming it, not a 500.
  fastify.addHook('preValidation', async (request) => {
    const field = findNul(request.query, 'query') ?? findNul(request.params);
    if (field !== undefined) throw nulError(field);
  });
  // Errors raised by Fastify itself (body parsing, size limit, media type) get
  // the same problem+json as everything else (Nest maps unknown routes).
  fastify.setErrorHandler((error, request, reply) => sendProblem(request, reply, error, logger));
  const lifecycle = app.get(LifecycleService);
  // Draining, once the delay is over: stop accepting before anything else.
  // Connections that reach the listener later are refused, which a proxy retries
  // on another replica even for a POST (nothing was sent). Closing it only at the
  // end, after a busy drain, reset the connections waiting in the kernel's accept
  // queue, whose requests the proxy had already sent (lost writes). net.Server's
  // close stops listening only; http.Server's would also cut idle keep-alive
  // connections, where a client may be sending right then. Every answer from now
  // on carries Connection: close (below), so connections in use close cleanly
  // after their answer, and the ones still idle at the very end are closed with
  // the server (forceCloseConnections: 'idle').
  lifecycle.onStopAccepting(() => {
    const server = app.getHttpServer();
    if (server.listening) NetServer.prototype.close.call(server);
  });
  sweepWhileClosing(app.getHttpServer(), fastify);
  fastify.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', String(request.id));
    // A response that sets a cookie (the session) is never stored by a cache.
    if (reply.hasHeader('set-cookie')) reply.header('cache-control', 'no-store');
    // Draining: the connection closes after this answer. A request in flight
    // at SIGTERM gets its answer, and its keep-alive connection does not then
    // sit idle holding the server open (idle ones were closed already).
    if (lifecycle.isDraining) reply.header('connection', 'close');
  });
  return app;
}
