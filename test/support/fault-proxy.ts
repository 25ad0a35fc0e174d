import net from 'node:net';

export type LinkState = 'open' | 'cut' | 'stalled';

const noop = (): void => undefined;

/**
 * One proxied connection: the client's socket (accepted here) and the
 * upstream socket to the target. Bytes are forwarded by hand (not `pipe`) so
 * a stall can stop both directions at once and a restore can start them
 * again. Both sockets allow half-open: a FIN is forwarded as a FIN, and one
 * that arrives while the link is stalled is held back (a half-open link tells
 * nobody), like an error from either side.
 */
class Link {
  upstream?: net.Socket;
  private toUpstreamBlocked = false;
  private toClientBlocked = false;
  /** What happened on one side while stalled, applied to the other side on restore. */
  private held: (() => void)[] = [];
  closed = false;

  constructor(
    readonly client: net.Socket,
    private readonly proxy: FaultProxy,
  ) {
    client.setNoDelay(true);
    client.pause();
    client.on('error', noop); // 'close' follows
    client.on('close', (hadError: boolean) => this.sideClosed(client, hadError));
  }

  /** Opens the upstream connection and starts forwarding (unless stalled meanwhile). */
  connect(host: string, port: number): void {
    if (this.closed || this.upstream) return;
    const client = this.client;
    const upstream = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
    this.upstream = upstream;
    upstream.pause();
    upstream.on('error', noop);
    upstream.on('close', (hadError: boolean) => this.sideClosed(upstream, hadError));
    upstream.on('connect', () => this.flow());
    client.on('data', (d: Buffer) => {
      this.proxy.bytesToUpstream += d.length;
      if (!upstream.write(d)) {
        this.toUpstreamBlocked = true;
        client.pause();
      }
    });
    upstream.on('data', (d: Buffer) => {
      this.proxy.bytesToClient += d.length;
      if (!client.write(d)) {
        this.toClientBlocked = true;
        upstream.pause();
      }
    });
    upstream.on('drain', () => {
      this.toUpstreamBlocked = false;
      if (this.proxy.state === 'open') client.resume();
    });
    client.on('drain', () => {
      this.toClientBlocked = false;
      if (this.proxy.state === 'open') upstream.resume();
    });
    client.on('end', () => this.whenOpen(() => upstream.end()));
    upstream.on('end', () => this.whenOpen(() => client.end()));
  }

  private whenOpen(action: () => void): void {
    if (this.proxy.state === 'stalled') this.held.push(action);
    else action();
  }

  private sideClosed(side: net.Socket, hadError: boolean): void {
    const other = side === this.client ? this.upstream : this.client;
    if (!other || other.destroyed) {
      this.finish();
      return;
    }
    // An error (RST, refused upstream) tears the other side down; a clean
    // close was already forwarded as a FIN by the 'end' listener.
    if (hadError) this.whenOpen(() => (other.connecting ? other.destroy() : other.resetAndDestroy()));
    else this.whenOpen(() => other.end());
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.proxy.forget(this);
  }

  /** Starts (or restarts) forwarding in both directions, as far as backpressure allows. */
  flow(): void {
    if (this.closed || this.proxy.state !== 'open') return;
    const held = this.held;
    this.held = [];
    if (this.upstream && !this.upstream.connecting) {
      if (!this.toUpstreamBlocked) this.client.resume();
      if (!this.toClientBlocked) this.upstream.resume();
    }
    for (const action of held) action();
  }

  /** Stops reading on both sides: kernel buffers fill, nothing crosses. */
  stall(): void {
    this.client.pause();
    this.upstream?.pause();
  }

  /** Tears the link down at once, with an RST to both ends. */
  reset(): void {
    this.finish();
    this.client.resetAndDestroy();
    if (this.upstream && !this.upstream.destroyed) {
      if (this.upstream.connecting) this.upstream.destroy();
      else this.upstream.resetAndDestroy();
    }
  }
}

/**
 * A fault-injecting TCP proxy on 127.0.0.1 for tests: put it between a
 * process and its Redis or PostgreSQL, then
 *   - `cut()`     destroys every current connection (RST) and resets new ones
 *                 as they arrive, until `restore()`;
 *   - `stall()`   keeps every connection open but forwards nothing either way
 *                 (a half-open link: writes are accepted until buffers fill,
 *                 nothing arrives, nobody is told); new connections are
 *                 accepted and held the same way;
 *   - `restore()` forwards again (held bytes and FINs flow on) and accepts normally;
 *   - `close()`   stops listening and drops everything.
 *
 * ```ts
 * const proxy = await FaultProxy.start('127.0.0.1', redisPort);
 * // REDIS_URL=redis://127.0.0.1:${proxy.port}
 * proxy.cut(); await sleep(3000); proxy.restore();
 * ```
 */
export class FaultProxy {
  state: LinkState = 'open';
  /** Connections accepted since start (including refused ones). */
  accepted = 0;
  /** Connections reset because the link was cut. */
  refused = 0;
  bytesToUpstream = 0;
  bytesToClient = 0;
  private readonly links = new Set<Link>();

  private constructor(
    private readonly server: net.Server,
    readonly targetHost: string,
    readonly targetPort: number,
    readonly port: number,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on 127.0.0.1 (`listenPort`, default any free port) and forwards to `targetHost:targetPort`. */
  static async start(targetHost: string, targetPort: number, options: { listenPort?: number } = {}): Promise<FaultProxy> {
    const server = net.createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FaultProxy(server, targetHost, targetPort, (server.address() as net.AddressInfo).port);
  }

  /** Open connections through the proxy. */
  get connections(): number {
    return this.links.size;
  }

  private accept(socket: net.Socket): void {
    this.accepted++;
    if (this.state === 'cut') {
      this.refused++;
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    const link = new Link(socket, this);
    this.links.add(link);
    // While stalled, a new connection is accepted by the kernel but goes nowhere until restore.
    if (this.state === 'open') link.connect(this.targetHost, this.targetPort);
  }

  /** @internal */
  forget(link: Link): void {
    this.links.delete(link);
  }

  /** Drops every connection (RST both ways) and resets new ones until `restore()`. */
  cut(): void {
    this.state = 'cut';
    for (const link of [...this.links]) link.reset();
  }

  /** Keeps connections open but forwards nothing, in either direction, until `restore()`. */
  stall(): void {
    this.state = 'stalled';
    for (const link of this.links) link.stall();
  }

  /** Back to normal: stalled connections flow again, new ones are forwarded. */
  restore(): void {
    this.state = 'open';
    for (const link of [...this.links]) {
      if (link.upstream) link.flow();
      else link.connect(this.targetHost, this.targetPort);
    }
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    this.state = 'cut';
    for (const link of [...this.links]) link.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
