import type { Socket } from 'node:net';

/*
 * Surgery on Node's HTTP server internals, kept here on its own.
 *
 * Why: an SSE stream is answered by hand on a hijacked socket and lives for
 * hours. Node's HTTP server still holds per-connection state for it (the
 * parser, the request and response, and through them the framework's
 * request/reply and everything they reference) for as long as the socket is
 * open, which at tens of thousands of streams is most of a replica's memory.
 * Node itself drops that state when it hands a socket to an `upgrade`
 * listener; we do the same for a hijacked stream, using the same internal
 * function (`_http_common.freeParser`).
 *
 * Relies on: `socket.parser` and `socket._httpMessage` (set by Node's
 * `http.Server`), `_http_common.freeParser`, and the list of events the server
 * listens to on a connection. When any of that is missing (another Node, an
 * HTTP/2 or already-released socket), nothing is changed and the stream
 * simply keeps that memory. Covered by http-release.spec.ts.
 */

interface PooledParser {
  finish?(): unknown;
}
type HttpCommon = { freeParser?: (parser: unknown, req: unknown, socket: unknown) => void };
type HttpSocket = Socket & { parser?: PooledParser | null; _httpMessage?: unknown };

const httpCommon: HttpCommon | undefined = (() => {
  try {
    return process.getBuiltinModule('_http_common');
  } catch {
    return undefined;
  }
})();

/** The events Node's HTTP server listens to on a connection (its per-connection state hangs off them). */
const SERVER_SOCKET_EVENTS = ['data', 'end', 'close', 'drain', 'error', 'timeout', 'pause', 'resume'] as const;

/**
 * Takes a hijacked connection away from Node's HTTP server the way Node
 * itself hands a socket to an `upgrade` listener: the server's listeners
 * (which hold its per-connection state: parser, request, response, and
 * through them the framework's request/reply) are removed, the parser goes
 * back to its pool and leaves the server's connection list, and the socket
 * reads in plain JS again. Every listener of those events is removed, the
 * caller's too: it must add its own again.
 * Returns false, changing nothing, when the socket is not a parsed HTTP/1 one.
 */
export function releaseHttpState(socket: Socket): boolean {
  const s = socket as HttpSocket;
  const parser = s.parser;
  if (!parser || typeof httpCommon?.freeParser !== 'function') return false;
  // (Its overrides of on/addListener put the prototype's methods back by
  // themselves once the parser is gone; deleting them would turn the socket
  // into a dictionary-mode object, which costs more memory than it frees.)
  for (const event of SERVER_SOCKET_EVENTS) socket.removeAllListeners(event);
  parser.finish?.();
  httpCommon.freeParser(parser, null, socket); // unconsumes the socket, pools the parser, sets socket.parser = null
  s._httpMessage = null;
  return true;
}

/**
 * Releases `socket` on the next turn of the event loop, never inside the HTTP
 * parser's own callbacks (a handler may answer synchronously from the
 * 'request' event, while the parser is still executing; freeing it there would
 * corrupt the server's connection list). By then the socket may be gone:
 * `wanted(socket)` says whether it still is. Once released, `adopt(socket)`
 * adds the owner's listeners again, and the socket flows with no 'data'
 * listener: stray bytes are dropped, 'end' still arrives.
 *
 * The functions are shared by every socket (no closures per connection).
 */
export function releaseSoon<S extends Socket>(socket: S, wanted: (socket: S) => boolean, adopt: (socket: S) => void): void {
  setImmediate(releaseNow<S>, socket, wanted, adopt);
}

function releaseNow<S extends Socket>(socket: S, wanted: (socket: S) => boolean, adopt: (socket: S) => void): void {
  if (socket.destroyed || !wanted(socket)) return;
  if (!releaseHttpState(socket)) return;
  adopt(socket);
  socket.resume();
}
