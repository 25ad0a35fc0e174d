import { AsyncLocalStorage } from 'node:async_hooks';

/** What every log line written while handling a request carries. */
export interface RequestContext {
  readonly requestId: string;
}

/**
 * The request a piece of code runs for, without passing it around: an
 * `onRequest` hook enters it (see app.factory.ts) and everything the request
 * awaits afterwards sees it, so the logger can stamp the request id on every
 * line, whichever service writes it.
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();
