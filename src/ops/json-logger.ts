import type { LoggerService } from '@nestjs/common';
import { pino, type Logger as Pino } from 'pino';
import type { AppConfig } from '../config/app-config.js';
import { requestContext } from './request-context.js';

/**
 * Secrets that must never reach a log line, whatever a message happens to
 * contain (an error echoing a header, a URL with `?api_key=`): API keys, bearer
 * tokens, session cookies, passwords and credentials in URLs or JSON.
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/\bar_[A-Za-z0-9_-]{12,}/g, 'ar_[redacted]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/\b(ar_session|session|token|password|secret|api[_-]?key|authorization|x-api-key|cookie)(["']?\s*[:=]\s*["']?)[^\s"',;&}]+/gi, '$1$2[redacted]'],
  [/(\w+:\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1[redacted]@'],
];

export function scrub(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Structured fields that are never logged as they are. */
const REDACT_PATHS = [
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
  'password',
  '*.password',
  'key',
  '*.key',
];

const LEVEL: Record<AppConfig['logLevel'], string> = { debug: 'debug', info: 'info', warn: 'warn', error: 'error' };

/**
 * The service's logger: one JSON object per line (pino), with the replica id,
 * the Nest context, and the request id of the request being handled (from
 * `requestContext`), messages scrubbed of secrets and known secret fields
 * redacted. `LOG_FORMAT=text` gives one readable line per entry instead, for
 * a terminal.
 */
export class JsonLogger implements LoggerService {
  private readonly pino: Pino;

  constructor(config: Pick<AppConfig, 'logLevel' | 'replicaId' | 'logFormat'>, destination: NodeJS.WritableStream = process.stdout) {
    this.pino = pino(
      {
        level: LEVEL[config.logLevel],
        base: { replica: config.replicaId },
        timestamp: pino.stdTimeFunctions.isoTime,
        messageKey: 'msg',
        redact: { paths: REDACT_PATHS, censor: '[redacted]' },
        formatters: { level: (label) => ({ level: label }) },
      },
      config.logFormat === 'text' ? textDestination(destination) : (destination as never),
    );
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal', message, rest);
  }

  /** Nest's convention: the last extra argument is the context; an error's stack may come before it. */
  private write(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', message: unknown, rest: unknown[]): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    const args = [...rest];
    if (typeof args[args.length - 1] === 'string') fields.context = args.pop();
    if (typeof args[0] === 'string' && args[0].includes('\n    at ')) fields.stack = scrub(args.shift() as string);
    const request = requestContext.getStore();
    if (request) fields.requestId = request.requestId;
    if (message instanceof Error) {
      fields.err = { type: message.name, message: scrub(message.message), stack: message.stack ? scrub(message.stack) : undefined };
      this.pino[level](fields, scrub(message.message));
    } else if (typeof message === 'object' && message !== null) {
      this.pino[level]({ ...fields, ...message });
    } else {
      this.pino[level](fields, scrub(String(message)));
    }
  }

  /** Access log line for one answered request (no query string: it may carry cursors and filters, never needed). */
  access(entry: { method: string; path: string; status: number; ms: number; requestId: string }): void {
    if (this.pino.isLevelEnabled('info')) this.pino.info({ ...entry, context: 'Http' }, 'request');
  }
}

/** `LOG_FORMAT=text`: time, level, context and message on one line (same redaction). */
function textDestination(out: NodeJS.WritableStream): { write(line: string): void } {
  return {
    write(line: string) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        const { time, level, context, msg, replica: _replica, ...rest } = entry;
        const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
        out.write(
          `${String(time)} ${String(level).toUpperCase().padEnd(5)} [${typeof context === 'string' ? context : '-'}] ${typeof msg === 'string' ? msg : JSON.stringify(msg ?? '')}${extra}\n`,
        );
      } catch {
        out.write(line);
      }
    },
  };
}
