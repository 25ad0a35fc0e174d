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

  constructor(private readonly onEvent: (event: string, data: string) => void) {}

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
    // `id` and `retry` serve a resumption, which this client does not do (the SDK transport's is off as well).
  }
}

type Internals = { _sessionId?: string; _abortController?: AbortController };

/**
 * The SDK's Streamable HTTP client transport, with its hottest path made lean: a JSON-RPC request or
 * notification POSTed in an established session goes through undici's `request` on the egress dispatcher,
 * and an SSE answer is parsed as it arrives, where the SDK builds a WHATWG `Request`/`Response`, pipes the body
 * through a `TextDecoderStream` and an `EventSourceParserStream`, and cancels each notification's body (an
 * `AbortError` built every time). Everything else — initialize, the standalone GET stream, resumption, batches,
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
      const headers: Record<string, string> = {
        ...this.storedHeaders,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId,
      };
      if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
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

  /** Delivers the stream's messages as they come; a stream that ends before its answer is reported (as the SDK does). */
  private readStream(body: Body, id: string | number, token: string | number | undefined, own: AbortController): void {
    const filter = new AnswerFilter(id, token);
    /** An event that was not JSON (before any other problem), for the error if the stream ends without the answer. */
    let notJson = false;
    /** The request was failed here (its answer too large to read, or its stream ended without it): nothing more is handed over. */
    let cut = false;
    let linger: NodeJS.Timeout | undefined;
    body.once('close', () => {
      clearTimeout(linger);
      if (this.inFlight.get(id) === own) this.inFlight.delete(id);
    });
    const queue = this.queue();
    const parser = new SseParser((event, data) => {
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
    });
    /** What was wrong with what the stream carried (the first problem), for the error if it ends without the answer. */
    const wrong = () => {
      if (notJson) return 'an event that is not JSON';
      const { problem } = filter;
      if (!problem) return '';
      return problem === 'not JSON-RPC' ? 'an event that is not JSON-RPC' : `an answer with another request's id (${problem.otherId})`;
    };
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
      this.onerror?.(error);
      if (!filter.answered) queue(failure(id, error.message));
    });
    body.on('end', () => {
      parser.push(decoder.end());
      if (filter.answered || cut) return;
      // The server ended the stream without the answer: this client does not resume a stream, so the answer cannot
      // come any more. The request fails now, not at its timeout.
      cut = true;
      const said = wrong();
      queue(failure(id, `ended the request's stream without its answer${said ? ` (it sent ${said})` : ''}`));
      this.onerror?.(new Error('SSE stream disconnected: it ended before the response'));
    });
    body.on('error', (error: Error) => {
      if (!filter.answered && !cut && !own.signal.aborted) this.onerror?.(new Error(`SSE stream disconnected: ${error.message}`));
    });
  }
}
