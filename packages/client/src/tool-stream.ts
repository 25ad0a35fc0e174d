import { abortReason, JsonRpcError } from './errors.js';
import { asObject, type JsonRpcResponse } from './gateway.js';
import { apiUrl, authHeaders, type ConnectionOptions, fetchOf, httpError } from './http.js';
import { namespaced } from './namespacing.js';
import { cancellable, RETURNED } from './queue.js';
import { readSse } from './sse.js';

/** What `callToolStream()` yields, in this order: `start`, any number of `progress`, `result`, `complete`. */
export type ToolStreamEvent =
  | { type: 'start'; data: unknown }
  | { type: 'progress'; progress: number; total?: number; message?: string }
  | { type: 'result'; result: unknown }
  | { type: 'complete'; durationMs: number };

export interface CallToolStreamOptions extends ConnectionOptions {
  /** Aborting cancels the call (the gateway cancels it at the backend) and the iteration throws the signal's reason. */
  signal?: AbortSignal;
  /** A stream with no byte for this long is given up (default: no limit). */
  idleMs?: number;
}

/**
 * Calls `tool` of MCP server `server` through the gateway's streamed tool
 * call (`POST /api/v1/mcp/stream`): an async iterator of `start`, then
 * `progress` as the backend reports it, then `result` and `complete`; it
 * returns the JSON-RPC response. A JSON-RPC error (denied, unknown tool,
 * backend failure) is thrown as `JsonRpcError`.
 *
 * Leaving the loop early (`break`, `return()`) or aborting `signal`
 * disconnects, and the gateway cancels the backend call.
 *
 * @example
 * ```ts
 * for await (const e of callToolStream({ baseUrl, apiKey }, 'everything', 'longRunningOperation', { duration: 5, steps: 5 })) {
 *   if (e.type === 'progress') console.log(`${e.progress}/${e.total}`);
 *   if (e.type === 'result') console.log(e.result);
 * }
 * ```
 */
export function callToolStream(
  options: CallToolStreamOptions,
  server: string,
  tool: string,
  args: Record<string, unknown> = {},
): AsyncGenerator<ToolStreamEvent, JsonRpcResponse | undefined, undefined> {
  return cancellable((signal) => callToolStreamSignalled({ ...options, signal }, server, tool, args), options.signal);
}

async function* callToolStreamSignalled(
  options: CallToolStreamOptions,
  server: string,
  tool: string,
  args: Record<string, unknown>,
): AsyncGenerator<ToolStreamEvent, JsonRpcResponse | undefined, undefined> {
  const local = new AbortController();
  const outer = options.signal;
  if (outer?.aborted) {
    if (outer.reason === RETURNED) return undefined;
    throw abortReason(outer);
  }
  const onAbort = () => local.abort(outer!.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  const id = `call-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const events: ToolStreamEvent[] = [];
  let response: JsonRpcResponse | undefined;
  let failure: JsonRpcError | undefined;
  let done = false;
  let wake: (() => void) | undefined;
  let readError: { error: unknown } | undefined;
  try {
    const res = await fetchOf(options)(apiUrl(options, '/mcp/stream'), {
      method: 'POST',
      headers: authHeaders(options, { accept: 'text/event-stream', 'content-type': 'application/json' }),
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: namespaced(server, tool), arguments: args } }),
      signal: local.signal,
      credentials: 'same-origin',
    });
    if (!res.ok) throw await httpError(res);
    const reading = readSse(
      res,
      (frame) => {
        if (frame.data === '[DONE]') {
          done = true;
        } else {
          let data: unknown;
          try {
            data = JSON.parse(frame.data);
          } catch {
            data = frame.data;
          }
          const o = asObject(data) ?? {};
          switch (frame.event) {
            case 'start':
              events.push({ type: 'start', data });
              break;
            case 'progress':
              events.push({
                type: 'progress',
                progress: Number(o.progress),
                total: typeof o.total === 'number' ? o.total : undefined,
                message: typeof o.message === 'string' ? o.message : undefined,
              });
              break;
            case 'result':
              events.push({ type: 'result', result: 'result' in o ? o.result : data });
              break;
            case 'complete':
              events.push({ type: 'complete', durationMs: Number(o.duration_ms ?? o.durationMs) });
              break;
            case 'error': {
              const e = asObject(o.error) ?? o;
              failure ??= new JsonRpcError(typeof e.code === 'number' ? e.code : -32603, typeof e.message === 'string' ? e.message : frame.data, e.data, id);
              break;
            }
            default:
              if (o.jsonrpc === '2.0') {
                response = o as unknown as JsonRpcResponse;
                if (response.error) failure ??= new JsonRpcError(response.error.code, response.error.message, response.error.data, response.id);
              }
          }
        }
        const w = wake;
        wake = undefined;
        w?.();
      },
      { idleMs: options.idleMs, signal: local.signal },
    ).then(
      () => {
        done = true;
      },
      (error: unknown) => {
        readError = { error };
      },
    );
    void reading.finally(() => {
      const w = wake;
      wake = undefined;
      w?.();
    });
    for (;;) {
      while (events.length > 0) yield events.shift()!;
      if (failure) throw failure;
      if (readError) {
        if (outer?.reason === RETURNED) return response; // the consumer called return(): cancelled, not failed
        throw readError.error;
      }
      if (done) return response;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } catch (error) {
    if (outer?.reason === RETURNED) return response;
    throw error;
  } finally {
    outer?.removeEventListener('abort', onAbort);
    // Leaving early closes the connection: the gateway cancels the backend call.
    if (!done || events.length > 0) local.abort(new DOMException('the tool call was cancelled by the client', 'AbortError'));
  }
}
