import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';
import { mediaType, MessageTooLargeError, SseEventBound } from '../../egress/message-bound.js';
import { GATEWAY_ERROR_CODES } from './gateway-errors.js';

type Body = Dispatcher.ResponseData['body'];

/** How long a request's stream may stay open after its answer (the server should end it then) before it is dropped. */
export const ANSWERED_LINGER_MS = 1000;

/** How much of an error response's body is kept for its message. */
const ERROR_TEXT_BYTES = 4096;

/**
 * Resuming a request's stream that the server ended before the answer (after an event with an id: MCP 2025-11-25,
 * SEP-1699). The wait before each resume is the server's `retry` (MIN_RESUME_DELAY_MS to MAX_RESUME_DELAY_MS), else the SDK client's
 * backoff: RESUME_DELAY_MS, times 1.5 per resume in a row that brought nothing new. MAX_IDLE_RESUMES resumes in a row
 * that bring no new event id (or fail: refused, reset, a 5xx, 408, 409, 429) fail the request; one with a new id starts the
 * count again. The request's timeout (the SDK's) bounds it all: when the request is let go of, resuming stops.
 */
export const RESUME_DELAY_MS = 1000;
export const MAX_RESUME_DELAY_MS = 30_000;
export const MAX_IDLE_RESUMES = 3;
/** The shortest wait before a resume, whatever the server's `retry` says (`retry: 0` and a new id on every stream was a tight GET loop). */
export const MIN_RESUME_DELAY_MS = 100;
/** The longest event id kept to resume from (sent back as a header); a longer one is ignored, as if the event had none. */
export const MAX_EVENT_ID_CHARS = 1024;

/** The `data` of the errors this transport answers a request with itself (an answer it could not use): not the backend's own. */
const ownFailures = new WeakSet<object>();

/** Whether an error the SDK settled a request with is this transport's verdict on an unusable answer, not the backend's own error. */
export function isTransportFailure(error: unknown): boolean {
  const data = (error as { data?: unknown } | undefined)?.data;
  return typeof data === 'object' && data !== null && ownFailures.has(data);
}

/** An error answer to request `id`, made here: the backend's answer was unusable (see `isTransportFailure`). */
function failure(id: string | number, message: string): JSONRPCMessage {
  const data = { reason: 'backend' };
  ownFailures.add(data);
  return { jsonrpc: '2.0', id, error: { code: GATEWAY_ERROR_CODES.backend, message, data } };
}

/** Whether a JSON-RPC id is `id` (compared as the SDK does, which takes 7 and "7" for the same request). */
function sameId(a: unknown, id: string | number): boolean {
  return a === id || (typeof a === 'string' || typeof a === 'number' ? String(a) === String(id) : false);
}

/** A progress notification about another request than the one whose stream it came on (its token is not the request's). */
function foreignProgress(message: JSONRPCMessage, token: string | number | undefined): boolean {
  if (!('method' in message) || message.method !== 'notifications/progress' || 'id' in message) return false;
  const theirs = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
  return token === undefined || !sameId(theirs, token);
}

/** A body's bytes until it ends or passes `max` (`over`: the rest is dropped unread, with the connection). */
async function readAtMost(body: Body, max: number): Promise<{ bytes: Buffer; over: boolean }> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    parts.push(part);
    size += part.length;
    if (size > max) {
      body.destroy();
      return { bytes: Buffer.concat(parts), over: true };
    }
  }
  return { bytes: Buffer.concat(parts), over: false };
}

/** A JSON-RPC message's text: a body of at most `max` bytes, else MessageTooLargeError. */
async function readBounded(body: Body, max: number): Promise<string> {
  const { bytes, over } = await readAtMost(body, max);
  if (over) throw new MessageTooLargeError(max);
  return bytes.toString('utf8');
}

/** The start of a body as text (an error page's message), the rest dropped unread. */
async function headText(body: Body, max: number): Promise<string> {
  return (await readAtMost(body, max)).bytes.subarray(0, max).toString('utf8');
}

/**
 * What of a request's POST answer (a JSON body or an SSE stream) is handed to the SDK: the request's own answer,
 * once, and the messages that are not progress of another request. What is dropped is noted (the first problem)
 * for the error the request fails with if its answer never comes: on a backend session shared by many clients
 * (tool streams), another request's answer or progress may be another client's.
 */
class AnswerFilter {
  answered = false;
  /** The first message dropped for what it was (not a second answer): not JSON-RPC, or another request's answer (its id). */
  problem?: 'not JSON-RPC' | { otherId: string };

  constructor(
    private readonly id: string | number,
    private readonly token: string | number | undefined,
  ) {}

  /** The message to hand over, or undefined (dropped). */
  take(json: unknown): JSONRPCMessage | undefined {
    const parsed = JSONRPCMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.problem ??= 'not JSON-RPC';
      return undefined;
    }
    const message = parsed.data;
    if ('result' in message || 'error' in message) {
      if (!sameId(message.id, this.id)) {
        this.problem ??= { otherId: JSON.stringify(message.id).slice(0, 40) };
        return undefined;
      }
      if (this.answered) return undefined;
      this.answered = true;
      return message;
    }
    return foreignProgress(message, this.token) ? undefined : message;
  }
}

/** An error response's text for a message: an HTML page (a proxy's or a framework's error page) as its text, not its markup. */
function errorText(text: string | null, type: string | string[] | undefined): string {
  if (text === null) return '(no body)';
  if (!/html/i.test(String(type))) return text;
  return text
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Server-Sent Events, incrementally (the WHATWG rules that matter to MCP): lines end with CRLF, LF or CR (a CR
 * at the end of one chunk and an LF at the start of the next are one line end); `data` lines are joined with
 * LF; a blank line dispatches; comments and unknown fields are skipped; a BOM opening the stream is dropped.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private started = false;
  /** The last chunk ended with CR: an LF opening the next one belongs to that line end. */
  private pendingCr = false;

  /** The last event ID buffer (it outlives an event), and whether the event being read set it. */
  private id = '';
  private idSet = false;

  /**
   * `onEvent` gets each event with data; `onId` the last event ID when an event that set it is dispatched (an
   * event without data, a priming event, too), `onRetry` each valid `retry` (a reconnection time in ms).
   */
  constructor(
    private readonly onEvent: (event: string, data: string) => void,
    private readonly fields: { onId?: (id: string) => void; onRetry?: (ms: number) => void } = {},
  ) {}

  push(text: string): void {
    if (text === '') return;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCr && text.charCodeAt(0) === 10) text = text.slice(1);
    this.pendingCr = false;
    let input = this.buffer + text;
    let at = 0;
    for (;;) {
      const cr = input.indexOf('\r', at);
      const lf = input.indexOf('\n', at);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      this.line(input.slice(at, end));
      if (input.charCodeAt(end) === 13) {
        if (end + 1 === input.length) {
          this.pendingCr = true;
          at = end + 1;
          break;
        }
        at = input.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
      } else at = end + 1;
    }
    input = input.slice(at);
    this.buffer = input;
  }

  private line(line: string): void {
    if (line === '') {
      if (this.idSet && this.id !== '') this.fields.onId?.(this.id);
      this.idSet = false;
      if (this.data.length > 0) this.onEvent(this.event || 'message', this.data.join('\n'));
      this.data = [];
      this.event = '';
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' a comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id') {
      // An id with a NUL is ignored (WHATWG); an empty one is taken for none, as the SDK's parser takes it. One longer
      // than MAX_EVENT_ID_CHARS is ignored too: it would go back to the server as a Last-Event-ID header.
      if (!value.includes('\0') && value.length <= MAX_EVENT_ID_CHARS) {
        this.id = value;
        this.idSet = true;
      }
    } else if (field === 'retry' && /^\d+$/.test(value)) this.fields.onRetry?.(Number(value));
  }
}

type Internals = { _sessionId?: string; _abortController?: AbortController };

/**
 * The SDK's Streamable HTTP client transport, with its hottest path made lean: a JSON-RPC request or
 * notification POSTed in an established session goes through undici's `request` on the egress dispatcher,
 * and an SSE answer is parsed as it arrives, where the SDK builds a WHATWG `Request`/`Response`, pipes the body
 * through a `TextDecoderStream` and an `EventSourceParserStream`, and cancels each notification's body (an
 * `AbortError` built every time). A request's stream that the server ends before the answer, after an event with an
 * id (the spec's polling, SEP-1699), is resumed here, as the SDK's transport resumes it: a GET with Last-Event-ID (see
 * RESUME_DELAY_MS). Everything else — initialize, the standalone GET stream, a caller's own resumption token, batches,
 * redirects, DELETE, closing — is the SDK's own code. What the SDK's `send` reports is reported the same way:
 * an HTTP error status is a `StreamableHTTPError` with its code (a 404 means the backend no longer knows the
 * session), a broken stream is an `onerror`, and `close()` aborts every request in flight. A message larger
 * than `maxMessageBytes` (an SSE event, or a JSON body) is not read: the request it answers fails at once with
 * that reason, and the connection is dropped. A request's stream is let go of (its connection closed) when the
 * request is cancelled or times out (the SDK then sends notifications/cancelled), and ANSWERED_LINGER_MS after its
 * answer if the server keeps it open: a server that never ends its streams holds no connections here.
 */
export class LeanStreamableHttpTransport extends StreamableHTTPClientTransport {
  /** The server's stored headers, names lower-cased (a stored `Content-Type` is replaced below, not sent twice). */
  private readonly storedHeaders: Record<string, string>;
  /** The requests in flight on the lean path (their POST, then their stream) by id, each with its own abort. */
  private readonly inFlight = new Map<string | number, AbortController>();

  constructor(
    private readonly endpoint: URL,
    private readonly dispatcher: Dispatcher,
    extraHeaders: Record<string, string>,
    private readonly maxMessageBytes: number,
    options: ConstructorParameters<typeof StreamableHTTPClientTransport>[1],
  ) {
    super(endpoint, options);
    this.storedHeaders = Object.fromEntries(Object.entries(extraHeaders).map(([name, value]) => [name.toLowerCase(), value]));
  }

  override async send(message: JSONRPCMessage | JSONRPCMessage[], options?: TransportSendOptions): Promise<void> {
    const internals = this as unknown as Internals;
    const sessionId = internals._sessionId;
    if (
      Array.isArray(message) ||
      sessionId === undefined ||
      options?.resumptionToken ||
      options?.onresumptiontoken ||
      'result' in message ||
      'error' in message
    ) {
      return super.send(message, options);
    }
    if ('method' in message && (message.method === 'initialize' || message.method === 'notifications/initialized')) return super.send(message, options);
    const id = 'method' in message && 'id' in message ? message.id : undefined;
    const token = (message.params as { _meta?: { progressToken?: string | number } } | undefined)?._meta?.progressToken;
    // The caller gave up on a request (cancelled, timed out): the server is told, and the request let go of — its
    // POST if it is still waiting for the head, its stream if it is being read.
    if ('method' in message && message.method === 'notifications/cancelled') {
      const cancelled = message.params?.requestId as string | number | undefined;
      if (cancelled !== undefined) this.inFlight.get(cancelled)?.abort();
    }
    const own = id !== undefined ? new AbortController() : undefined;
    if (own) this.inFlight.set(id!, own);
    let streaming = false;
    try {
      const headers = this.sessionHeaders({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
      // A request has its own signal (close() aborts them all, below); a notification the session's.
      const signal = own?.signal ?? internals._abortController?.signal;
      const res = await this.dispatcher.request({
        origin: this.endpoint.origin,
        path: `${this.endpoint.pathname}${this.endpoint.search}`,
        method: 'POST',
        headers,
        body: JSON.stringify(message),
        ...(signal ? { signal } : {}),
      });
      const status = res.statusCode;
      if (status >= 300 && status < 400) {
        // A redirect: the SDK follows it within the origin and refuses it elsewhere; the request was not processed here.
        await res.body.dump();
        return super.send(message, options);
      }
      const newSession = res.headers['mcp-session-id'];
      if (typeof newSession === 'string') internals._sessionId = newSession;
      if (status >= 400) {
        const text = await headText(res.body, ERROR_TEXT_BYTES).catch(() => null);
        throw new StreamableHTTPError(status, `Error POSTing to endpoint (HTTP ${status}): ${errorText(text, res.headers['content-type'])}`);
      }
      if (status === 202 || id === undefined) {
        await res.body.dump();
        return;
      }
      const type = mediaType(res.headers['content-type']);
      if (type === 'text/event-stream') {
        streaming = true;
        this.readStream(res.body, id, token, own!);
      } else if (type === 'application/json') {
        const text = await readBounded(res.body, this.maxMessageBytes);
        const queue = this.queue();
        // A JSON answer that is not the request's own answer (not JSON, not JSON-RPC, another request's id) fails the
        // request at once with what was wrong; the SDK would otherwise wait for its answer until the timeout, and an
        // answer with another id would settle that other request (possibly another client's, on a shared session).
        let data: unknown;
        try {
          data = JSON.parse(text);
        } catch (error) {
          queue(failure(id, `answered with invalid JSON (${(error as Error).message})`));
          return;
        }
        const filter = new AnswerFilter(id, token);
        for (const m of Array.isArray(data) ? data : [data]) {
          const message = filter.take(m);
          if (message) queue(message);
        }
        if (!filter.answered) {
          const { problem } = filter;
          const wrong = !problem
            ? 'answered without an answer to the request'
            : problem === 'not JSON-RPC'
              ? 'answered with a message that is not JSON-RPC'
              : `answered with another request's id (${problem.otherId})`;
          queue(failure(id, wrong));
        }
      } else {
        await res.body.dump();
        throw new StreamableHTTPError(-1, `Unexpected content type: ${String(res.headers['content-type'])}`);
      }
    } catch (error) {
      // Let go of on purpose: the SDK settled the request already (cancelled, timed out); nothing went wrong.
      if (own?.signal.aborted && !internals._abortController?.signal.aborted) return;
      this.onerror?.(error as Error);
      throw error;
    } finally {
      if (!streaming && own && this.inFlight.get(id!) === own) this.inFlight.delete(id!);
    }
  }

  /** Closes as the SDK does, aborting the requests in flight on the lean path first (their own signals). */
  override async close(): Promise<void> {
    for (const controller of this.inFlight.values()) controller.abort();
    await super.close();
  }

  /**
   * Hands messages to the SDK one microtask apart, in order. The SDK runs a notification's handler a microtask
   * after receiving it but settles a response at once (and drops the request's progress handler then): a
   * progress notification and the answer read from one chunk, handed over back to back, lost the progress.
   * (The SDK's transport hands over one message per `await reader.read()`.)
   */
  private queue(): (message: JSONRPCMessage) => void {
    let last = Promise.resolve();
    return (message) => {
      last = last.then(() => {
        try {
          this.onmessage?.(message);
        } catch (error) {
          this.onerror?.(error as Error);
        }
      });
    };
  }

  /**
   * Delivers a request's stream's messages as they come. A stream that ends (or breaks) before the answer is resumed
   * when one of its events carried an id: a GET on the endpoint with Last-Event-ID, after the server's `retry` (see
   * RESUME_DELAY_MS), and the resumed stream is read as the first (the same filter, bound, cancellation and linger),
   * resumed again if it ends early too. A stream that ends before the answer with no id to resume from, too many
   * resumes in a row that bring nothing new, and a resume the server refuses fail the request at once.
   */
  private readStream(first: Body, id: string | number, token: string | number | undefined, own: AbortController): void {
    const filter = new AnswerFilter(id, token);
    /** An event that was not JSON (before any other problem), for the error if the stream ends without the answer. */
    let notJson = false;
    /** The request was failed here (its answer too large to read, or its stream ended without it): nothing more is handed over. */
    let cut = false;
    let linger: NodeJS.Timeout | undefined;
    /** The last event id read on the request's streams (where a resume starts), and the server's last `retry`. */
    let lastEventId: string | undefined;
    let retryMs: number | undefined;
    /** Resumes in a row that brought no new event id. */
    let idle = 0;
    /** A resume is waited for or being made: the stream that ended is not the request's last. */
    let resuming = false;
    const queue = this.queue();
    /** Nothing more is read for the request: it is let go of. */
    const release = () => {
      clearTimeout(linger);
      if (this.inFlight.get(id) === own) this.inFlight.delete(id);
    };
    /** What was wrong with what the streams carried (the first problem), for the error if the answer never comes. */
    const wrong = () => {
      if (notJson) return ' (it sent an event that is not JSON)';
      const { problem } = filter;
      if (!problem) return '';
      return ` (it sent ${problem === 'not JSON-RPC' ? 'an event that is not JSON-RPC' : `an answer with another request's id (${problem.otherId})`})`;
    };
    /** Fails the request now, not at its timeout (`error`, if any, reported first), and lets it go. */
    const fail = (message: string, error?: Error) => {
      cut = true;
      release();
      if (error) this.onerror?.(error);
      queue(failure(id, message));
    };

    /** Resumes the request's stream from `lastEventId`, after the wait; again after a failed attempt. */
    const resume = async (): Promise<void> => {
      for (;;) {
        if (idle >= MAX_IDLE_RESUMES) {
          fail(
            `ended the request's stream without its answer, and ${MAX_IDLE_RESUMES} resumptions in a row brought no new event${wrong()}`,
            new Error('SSE stream disconnected: resuming it brought nothing new'),
          );
          return;
        }
        if (!(await pause(Math.max(MIN_RESUME_DELAY_MS, Math.min(retryMs ?? RESUME_DELAY_MS * 1.5 ** idle, MAX_RESUME_DELAY_MS)), own.signal)))
          return release();
        let res: Dispatcher.ResponseData;
        try {
          res = await this.dispatcher.request({
            origin: this.endpoint.origin,
            path: `${this.endpoint.pathname}${this.endpoint.search}`,
            method: 'GET',
            headers: this.resumeHeaders(lastEventId!),
            signal: own.signal,
          });
        } catch (error) {
          if (own.signal.aborted) return release();
          // Refused, reset: tried again (the session is probed meanwhile, and closed if the backend is gone).
          this.onerror?.(new Error(`SSE stream disconnected: resuming it failed: ${(error as Error).message}`));
          idle++;
          continue;
        }
        const status = res.statusCode;
        const type = mediaType(res.headers['content-type']);
        if (status >= 200 && status < 300 && type === 'text/event-stream' && !own.signal.aborted) {
          resuming = false;
          read(res.body);
          return;
        }
        const text = status >= 300 ? await headText(res.body, ERROR_TEXT_BYTES).catch(() => null) : (res.body.destroy(), null);
        if (own.signal.aborted) return release();
        // A server error, or the stream still taken by its last connection (409) or a limit (429): tried again.
        if (status >= 500 || status === 408 || status === 409 || status === 429) {
          idle++;
          continue;
        }
        const refused = `ended the request's stream without its answer and refused to resume it: a GET with Last-Event-ID was answered`;
        if (status === 405) fail(`${refused} HTTP 405 (the server does not offer GET streams)`);
        else if (status === 404) {
          // The backend no longer knows the session: reported as a 404, the session is retired. The request reached the
          // backend, so it is failed, not made again on a new session.
          const said = `${refused} HTTP 404 (the server no longer knows the session)`;
          fail(said, new StreamableHTTPError(404, said));
        } else if (status < 300) fail(`${refused} ${status} with ${String(res.headers['content-type'] ?? 'no content type')}, not an event stream`);
        else fail(`${refused} HTTP ${status}: ${errorText(text, res.headers['content-type'])}`);
        return;
      }
    };

    /** The request's stream ended or broke (`broken`) without its answer: resumed, or the request failed. */
    const ended = (fresh: boolean, broken: boolean) => {
      if (filter.answered || cut || own.signal.aborted) return;
      if (lastEventId === undefined) {
        // Nothing to resume from: the answer cannot come any more. A stream that ended fails the request now, not at
        // its timeout; a broken one was reported (the session is probed, and closed with its requests if it is dead).
        if (!broken) fail(`ended the request's stream without its answer${wrong()}`, new Error('SSE stream disconnected: it ended before the response'));
        return;
      }
      idle = fresh ? 0 : idle + 1;
      resuming = true;
      void resume();
    };

    const read = (body: Body) => {
      /** This stream brought an event id not read before: progress, for the count of idle resumes. */
      let fresh = false;
      body.once('close', () => {
        if (!resuming) release();
      });
      const parser = new SseParser(
        (event, data) => {
          // Events with no data (a priming event, which only carries an id to resume from) are skipped, as the SDK does.
          if (event !== 'message' || data === '') return;
          let json: unknown;
          try {
            json = JSON.parse(data);
          } catch {
            if (!filter.problem) notJson = true;
            return;
          }
          const answeredBefore = filter.answered;
          const message = filter.take(json);
          if (!message) return;
          if (filter.answered && !answeredBefore) linger = setTimeout(() => own.abort(), ANSWERED_LINGER_MS).unref();
          queue(message);
        },
        {
          onId: (eventId) => {
            if (eventId === lastEventId) return;
            lastEventId = eventId;
            fresh = true;
          },
          onRetry: (ms) => (retryMs = ms),
        },
      );
      // undici's body gives Buffers whatever its encoding: a character split between two chunks is joined here.
      const decoder = new StringDecoder('utf8');
      const bound = new SseEventBound(this.maxMessageBytes);
      body.on('data', (bytes: Buffer) => {
        if (cut) return;
        if (bound.push(bytes)) {
          parser.push(decoder.write(bytes));
          return;
        }
        // An event without end (or too large to hold): the request fails now, not at its timeout, and nothing more is read.
        cut = true;
        body.destroy();
        const error = new MessageTooLargeError(this.maxMessageBytes);
        if (filter.answered) this.onerror?.(error);
        else fail(error.message, error);
      });
      body.on('end', () => {
        parser.push(decoder.end());
        ended(fresh, false);
      });
      body.on('error', (error: Error) => {
        if (filter.answered || cut || own.signal.aborted) return;
        this.onerror?.(new Error(`SSE stream disconnected: ${error.message}`));
        ended(fresh, true);
      });
    };

    read(first);
  }

  /** A request's headers: the server's stored ones, `own` over them, then the session's id and protocol version. */
  private sessionHeaders(own: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { ...this.storedHeaders, ...own };
    const sessionId = (this as unknown as Internals)._sessionId;
    if (sessionId !== undefined) headers['mcp-session-id'] = sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    return headers;
  }

  /** The headers of a GET resuming a request's stream: the session's, without a body's type, as the SDK's own GET sends them. */
  private resumeHeaders(lastEventId: string): Record<string, string> {
    const { 'content-type': _, ...headers } = this.sessionHeaders({ accept: 'text/event-stream', 'last-event-id': lastEventId });
    return headers;
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts (at once if it has). */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const stop = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', stop, { once: true });
  });
}
