import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgressDispatcher, egressFetch } from './egress.dispatcher.js';
import { EgressPolicy } from './egress.policy.js';

describe('egressFetch and a long-lived abort signal (the MCP SDK passes one per session)', () => {
  let server: http.Server;
  let base: string;
  const dispatcher = createEgressDispatcher(new EgressPolicy({ allowPrivateNetworks: true }));
  const fetch = egressFetch(dispatcher);

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/hang') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        return; // the body never ends: only an abort ends it
      }
      req.resume();
      req.on('end', () => res.end('{"ok":true}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await dispatcher.close();
  });

  it('adds no listener per request to the caller’s signal (it does not pile up over a session’s requests)', async () => {
    const session = new AbortController();
    for (let i = 0; i < 300; i++) {
      const res = await fetch(`${base}/call`, { method: 'POST', body: '{}', signal: session.signal });
      expect(await res.json()).toEqual({ ok: true });
    }
    // Straight to undici, each of the 300 requests left an `abort` listener on it until garbage collection.
    expect(getEventListeners(session.signal, 'abort').length).toBeLessThanOrEqual(1);
  });

  it('still aborts a request in flight, and a response body being read, when the caller’s signal aborts', async () => {
    const session = new AbortController();
    const res = await fetch(`${base}/hang`, { signal: session.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: first\n\n');
    const pending = reader.read();
    session.abort(new Error('the session is closed'));
    await expect(pending).rejects.toThrow('the session is closed');

    const aborted = new AbortController();
    aborted.abort(new Error('closed before'));
    await expect(fetch(`${base}/call`, { method: 'POST', body: '{}', signal: aborted.signal })).rejects.toThrow('closed before');
  });
});
