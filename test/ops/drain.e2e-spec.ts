import { EventSource } from 'eventsource';
import { io, type Socket } from 'socket.io-client';
import { SOCKET_PATH } from '../../src/events/socket-protocol.js';
import { Cluster, type Replica, replicaMetric as metric } from '../support/replicas.js';
import { TcpBalancer } from '../support/tcp-balancer.js';
import { api, createTestDatabase, recordFigure, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

/**
 * The drain Kubernetes relies on, step by step, with real clients behind a
 * balancer: SIGTERM → unready at once (still serving) → after
 * SHUTDOWN_DELAY_MS streams and sockets are told to go and reconnect to the
 * other replica, resuming with nothing lost → in-flight requests finish →
 * sequencer leadership handed over → exit 0 inside the grace period.
 */
describe('drain with real clients moving to another replica', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  let lb: TcpBalancer;

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { SHUTDOWN_GRACE_MS: '15000', SSE_RETRY_MS: '300' });
    r1 = await cluster.start('drain-1', { SHUTDOWN_DELAY_MS: '1000' }); // first: it takes the sequencer lease
    r2 = await cluster.start('drain-2');
    // Like a Kubernetes Service: an unready (draining) pod gets no new connections.
    lb = await TcpBalancer.start([Number(new URL(r1.url).port), Number(new URL(r2.url).port)], { readinessPath: '/readyz' });
  }, 60_000);
  afterAll(async () => {
    await lb.close();
    await cluster.stop();
    await db.drop();
  });

  it('turns unready, moves every client with nothing lost, finishes writes, hands over leadership and exits in time', async () => {
    expect(await metric(r1, 'registry_sequencer_leader')).toBe(1);
    const auth = { authorization: `Bearer ${cluster.adminKey}` };
    const sse = Array.from({ length: 6 }, () => {
      const ids: number[] = [];
      const source = new EventSource(`${lb.url}/api/v1/stream/changes?events=agent.created`, {
        fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, ...auth } }),
      });
      source.addEventListener('agent.created', (e) => ids.push(Number(e.lastEventId)));
      return { source, ids };
    });
    const sockets = Array.from({ length: 6 }, () => {
      const seqs: number[] = [];
      const closing: string[] = [];
      let last: number | undefined;
      const socket: Socket = io(lb.url, {
        path: SOCKET_PATH,
        auth: { token: cluster.adminKey },
        transports: ['websocket'],
        forceNew: true,
        reconnectionDelay: 200,
      });
      socket.on(
        'connect',
        () => void socket.emitWithAck('subscribe', { channels: ['agents'], events: 'agent.created', ...(last !== undefined ? { lastEventId: last } : {}) }),
      );
      socket.on('event', (e: { seq: number }) => {
        seqs.push(e.seq);
        last = e.seq;
      });
      socket.on('cursor', (c: { cursor: number }) => (last = c.cursor));
      socket.on('closing', (n: { reason: string }) => closing.push(n.reason));
      return { socket, seqs, closing };
    });
    try {
      await waitFor(() => sockets.every((s) => s.socket.connected), 10_000, 'sockets connected');
      await sleep(500);
      expect(lb.forwarded.get(Number(new URL(r1.url).port))).toBeGreaterThanOrEqual(3); // some clients really are on r1

      // Writers through the balancer for the whole drain.
      let sigtermAt = Number.POSITIVE_INFINITY;
      const written: string[] = [];
      const failed: string[] = [];
      let writing = true;
      const writers = [0, 1].map(async (w) => {
        for (let i = 0; writing; i++) {
          const id = `drain-${w}-${i}`;
          const res = await api(lb.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(id) }).catch(
            (e: Error & { cause?: { code?: string; message?: string } }) => ({
              status: 0,
              text: `${e.message} (${e.cause?.code ?? ''} ${e.cause?.message ?? ''}) at +${Date.now() - sigtermAt} ms`,
            }),
          );
          if (res.status === 201) written.push(id);
          else failed.push(`${id}: ${res.status} ${res.text.slice(0, 120)}`);
          await sleep(25);
        }
      });
      await sleep(500);

      const t0 = Date.now();
      sigtermAt = t0;
      r1.process.kill('SIGTERM');
      let unreadyAt = 0;
      while (!unreadyAt && Date.now() - t0 < 3000) {
        if ((await api(r1.url, 'GET', '/readyz').catch(() => ({ status: 0 }))).status === 503) unreadyAt = Date.now() - t0;
        else await sleep(20);
      }
      // Still serving while unready (the delay): a write straight to r1 succeeds.
      const during = await api(r1.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('written-while-unready') });
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([r1.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 12_000)))]);
      clearTimeout(timer);
      const exitedAt = Date.now() - t0;
      const leaderAt = await waitFor(async () => ((await metric(r2, 'registry_sequencer_leader')) === 1 ? Date.now() - t0 : false), 5000, 'r2 leading');
      await sleep(1000);
      writing = false;
      await Promise.all(writers);
      if (during.status === 201) written.push('written-while-unready');

      const createdSeqs = await waitFor(
        async () => {
          const res = await api(r2.url, 'GET', '/api/v1/events?after=0&limit=1000&events=agent.created', { key: cluster.adminKey });
          const items = res.body.items as { seq: number; id: string }[];
          return written.every((id) => items.some((e) => e.id === id)) ? items : false;
        },
        10_000,
        'every write in the outbox',
      );
      const expected = createdSeqs.map((e) => e.seq);
      await waitFor(
        () => sse.every((c) => c.ids.length >= expected.length) && sockets.every((s) => s.seqs.length >= expected.length),
        15_000,
        'every client caught up',
      );

      recordFigure(
        `drain steps: unready after ${unreadyAt} ms, exit ${code} after ${exitedAt} ms, r2 leading after ${leaderAt} ms; ${written.length} writes, ${failed.length} failed`,
      );
      expect(unreadyAt).toBeGreaterThan(0);
      expect(unreadyAt).toBeLessThan(500);
      expect(during.status).toBe(201);
      expect(code).toBe(0);
      expect(exitedAt).toBeGreaterThanOrEqual(1000); // waited out SHUTDOWN_DELAY_MS
      expect(exitedAt).toBeLessThan(6000);
      expect(leaderAt).toBeLessThan(exitedAt + 1500);
      expect(failed).toEqual([]);
      for (const c of sse) expect(c.ids).toEqual(expected);
      for (const s of sockets) expect(s.seqs).toEqual(expected);
      expect(sockets.some((s) => s.closing.includes('draining'))).toBe(true);
    } finally {
      for (const c of sse) c.source.close();
      for (const s of sockets) s.socket.disconnect();
    }
  });
});
