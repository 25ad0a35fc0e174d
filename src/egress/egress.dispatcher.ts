import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { EgressDeniedError, type EgressPolicy } from './egress.policy.js';
import { boundedResponse } from './message-bound.js';

/** Resolves a name to every address (the system resolver by default; tests substitute one). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type LookupFunction = (hostname: string, options: { family?: number | string; all?: boolean }, callback: LookupCallback) => void;

/**
 * A `lookup` for `net.connect`/`tls.connect`: resolves the name, refuses the
 * connection (EgressDeniedError) if ANY of its addresses is refused by the
 * policy, and hands the socket only the addresses it checked — so what is
 * connected to is exactly what was checked, at connect time, every time
 * (no cache to rebind around).
 */
export function egressLookup(policy: EgressPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        try {
          policy.assertAddresses(
            hostname,
            addresses.map((a) => a.address),
          );
        } catch (error) {
          callback(error as EgressDeniedError, options.all ? [] : '', 0);
          return;
        }
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : Number(options.family ?? 0);
        const usable = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
        if (usable.length === 0) {
          const error = Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' });
          callback(error, options.all ? [] : '', 0);
        } else if (options.all) callback(null, usable);
        else callback(null, usable[0].address, usable[0].family);
      },
      (error: NodeJS.ErrnoException) => callback(error, options.all ? [] : '', 0),
    );
  };
}

export interface EgressDispatcherOptions {
  readonly resolve?: Resolver;
  readonly connectTimeoutMs?: number;
}

/**
 * An undici Agent whose every connection passes the egress policy: IP
 * literals are checked before connecting (Node does not call `lookup` for
 * them), names through `egressLookup`. Redirects open new connections through
 * the same agent, so they are checked too. Use it for every outbound request
 * to an MCP server: `fetch(url, { dispatcher })`, or `egressFetch` below.
 */
export function createEgressDispatcher(policy: EgressPolicy, options: EgressDispatcherOptions = {}): Agent {
  const connector = buildConnector({
    lookup: egressLookup(policy, options.resolve),
    timeout: options.connectTimeoutMs ?? 10_000,
  });
  return new Agent({
    connect: (opts, callback) => {
      const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
      if (isIP(host) !== 0) {
        const reason = policy.refusal(host);
        if (reason) {
          callback(new EgressDeniedError(host, host, reason), null);
          return;
        }
      }
      connector(opts, callback);
    },
  });
}

export type EgressFetch = (input: string | URL, init?: Parameters<typeof undiciFetch>[1]) => ReturnType<typeof undiciFetch>;

/**
 * `fetch` bound to an egress dispatcher (the MCP SDK's transports accept a `fetch` option).
 *
 * The caller's signal reaches undici through a signal of its own (`AbortSignal.any`): undici adds an `abort`
 * listener to the signal it is given and removes it only once the request is garbage-collected, and the SDK
 * gives every request of a session the same long-lived signal. Thousands of listeners piled up on it, and each
 * new one walked them all (an EventTarget refuses duplicates): a cost per backend call that grew with the
 * session's traffic. A signal made by `AbortSignal.any` is held by its source weakly, in a set, so a call costs
 * the same on a session's millionth request as on its first, and aborting the source still aborts every request
 * (and response body) in flight.
 *
 * With `maxMessageBytes`, a response's body is bounded: each event of an event stream, or the whole of any other
 * body (`boundedResponse`).
 */
export function egressFetch(dispatcher: Agent, maxMessageBytes?: number): EgressFetch {
  return async (input, init) => {
    const signal = init?.signal;
    const response = await undiciFetch(input, { ...init, dispatcher, signal: signal ? AbortSignal.any([signal]) : signal });
    return maxMessageBytes === undefined ? response : boundedResponse(response, maxMessageBytes);
  };
}

/** The EgressDeniedError behind a failed fetch (undici wraps connect errors in `TypeError: fetch failed`). */
export function egressDenial(error: unknown): EgressDeniedError | undefined {
  for (let e = error as { cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as { cause?: unknown } | undefined, i++) {
    if (e instanceof EgressDeniedError) return e;
  }
  return undefined;
}

/**
 * A failed outbound call in one line of at most 300 characters: the egress denial's own message,
 * or the error's with its cause (undici's `fetch failed` hides the ECONNREFUSED behind it).
 */
export function describeEgressError(error: unknown): string {
  const denial = egressDenial(error);
  if (denial) return denial.message;
  const e = error as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  const message = (e?.message ?? String(error)).replace(/\s+/g, ' ');
  return (cause && !message.includes(cause) ? `${message} (${cause})` : message).slice(0, 300);
}
