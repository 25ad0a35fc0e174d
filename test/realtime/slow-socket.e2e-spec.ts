import pg from 'pg';
import { io, type Socket } from 'socket.io-client';
import { SOCKET_PATH } from '../../src/events/socket-protocol.js';
import { Cluster, type Replica, replicaMetric } from '../support/replicas.js';
import { createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

/** The TCP socket under socket.io-client's WebSocket transport (to stop reading, as a stuck client does). */
function rawSocket(socket: Socket): { pause(): void } {
  const transport = (socket.io.engine as unknown as { transport: { name: string; ws?: { _socket?: { pause(): void } } } }).transport;
  if (transport.name !== 'websocket' || !transport.ws?._socket) throw new Error('not on a WebSocket');
  return transport.ws._socket;
}

describe('a Socket.IO client that stops reading (real process, real sockets)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r: Replica;
  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { STREAM_MAX_BUFFER_BYTES: '262144' });
    r = await cluster.start('slow-io');
  });
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('is disconnected as a slow consumer once its backlog passes the bound, while a reading socket gets everything', async () => {
    const open = async () => {
      const s = io(r.url, { path: SOCKET_PATH, auth: { token: cluster.adminKey }, transports: ['websocket'], forceNew: true, reconnection: false });
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      await s.emitWithAck('subscribe', { channels: ['changes'] });
      return s;
    };
    const stuck = await open();
    // The reader reads, but on a saturated machine it may fall behind by more than the bound too: then it is cut like any
    // slow consumer and resumes from its last event (as the GUI's client does), so what it must get is every event once.
    const reader = io(r.url, { path: SOCKET_PATH, auth: { token: cluster.adminKey }, transports: ['websocket'], forceNew: true, reconnectionDelay: 100 });
    const seen = new Set<number>();
    let last: number | undefined;
    reader.on('connect', () => void reader.emitWithAck('subscribe', { channels: ['changes'], ...(last !== undefined ? { lastEventId: String(last) } : {}) }));
    reader.on('event', (e: { seq: number }) => {
      seen.add(e.seq);
      last = e.seq;
    });
    await waitFor(() => reader.connected, 5000, 'the reader connected');
    await sleep(300);
    const received = () => seen.size;
    rawSocket(stuck).pause();
    // Thousands of ~1 KB events: far more than the kernel buffers and the 256 KiB bound.
    const direct = new pg.Client({ connectionString: db.url });
    await direct.connect();
    try {
      await direct.query(
        `INSERT INTO outbox (type, resource_id, data) SELECT 'agent.updated', 'bulk-' || g, jsonb_build_object('pad', repeat('x', 1000)) FROM generate_series(1, 15000) g`,
      );
    } finally {
      await direct.end();
    }
    await waitFor(async () => (await replicaMetric(r, 'registry_socketio_disconnects_total')) >= 1, 20_000, 'the stuck socket disconnected');
    const text = await (await fetch(`${r.url}/metrics`)).text();
    expect(text).toMatch(/registry_socketio_disconnects_total\{reason="slow consumer"\} [1-9]/);
    await waitFor(() => received() >= 15000, 30_000, 'the reading socket to get all 15,000 events');
    expect(reader.connected).toBe(true);
    expect(await replicaMetric(r, 'registry_socketio_connections')).toBe(1);
    stuck.disconnect();
    reader.disconnect();
  });
});
