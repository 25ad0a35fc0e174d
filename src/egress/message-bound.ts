import { TransformStream } from 'node:stream/web';
import { Response } from 'undici';

/**
 * The largest message the registry reads from an MCP server (MCP_MAX_MESSAGE_BYTES): one Server-Sent Event of a
 * stream, or a whole JSON body. A server that sends more (an event that never ends, a body without end) is cut
 * off there instead of filling the replica's memory.
 */
export class MessageTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the MCP server sent a message larger than ${limit} bytes (MCP_MAX_MESSAGE_BYTES): it was cut off unread`);
    this.name = 'MessageTooLargeError';
  }
}

/**
 * Counts the bytes of the Server-Sent Event being read: those since the last blank line (an event ends at an
 * empty line; lines end with CRLF, LF or CR, as the SSE rules say), line ends not counted. An event is refused as soon
 * as a chunk takes it over the bound (within one chunk of it), or when it ends over it.
 */
export class SseEventBound {
  private size = 0;
  private atLineStart = true;
  private afterCr = false;

  constructor(private readonly max: number) {}

  /** Counts a chunk; false once the event being read is larger than the bound. */
  push(chunk: Uint8Array): boolean {
    let { size, atLineStart, afterCr } = this;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 10 || b === 13) {
        if (b === 10 && afterCr) {
          afterCr = false; // the LF of a CRLF: the same line end
          continue;
        }
        if (atLineStart) {
          // An empty line: the event ended (one that came whole in this chunk is held to the bound too).
          if (size > this.max) return this.over();
          size = 0;
        }
        atLineStart = true;
        afterCr = b === 13;
      } else {
        atLineStart = false;
        afterCr = false;
        size++;
      }
    }
    this.size = size;
    this.atLineStart = atLineStart;
    this.afterCr = afterCr;
    return size <= this.max || this.over();
  }

  private over(): false {
    this.size = Number.POSITIVE_INFINITY; // refused for good: nothing after it is read
    return false;
  }
}

/** A Content-Type header's media type, lower-cased, without its parameters (`text/event-stream; charset=utf-8`). */
export function mediaType(contentType: string | string[] | null | undefined): string {
  return String(contentType ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

/** Statuses whose responses have no body (a Response cannot be built with one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * The response with its body bounded: each event of an event stream, or the whole of any other body, at most
 * `max` bytes. Past that, reading the body fails with MessageTooLargeError and the connection is dropped.
 */
export function boundedResponse(response: Response, max: number): Response {
  if (!response.body || NULL_BODY.has(response.status)) return response;
  const events = mediaType(response.headers.get('content-type')) === 'text/event-stream' ? new SseEventBound(max) : undefined;
  let total = 0;
  const guard = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (events ? !events.push(chunk) : total > max) controller.error(new MessageTooLargeError(max));
      else controller.enqueue(chunk);
    },
  });
  const bounded = new Response(response.body.pipeThrough(guard), { status: response.status, statusText: response.statusText, headers: response.headers });
  // What a redirect left (eventsource reconnects to the URL it was redirected to).
  Object.defineProperty(bounded, 'url', { value: response.url });
  Object.defineProperty(bounded, 'redirected', { value: response.redirected });
  return bounded;
}
