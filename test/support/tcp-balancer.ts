import net from 'node:net';

/**
 * A minimal layer-4 load balancer on 127.0.0.1: each new connection goes to
 * the next backend in turn; a backend that refuses the connection is skipped
 * (as nginx's `proxy_next_upstream error` does), so clients of a replica that
 * stopped listening land on another one. Bytes are piped untouched, so SSE,
 * WebSocket upgrades and keep-alive behave as end to end.
 */
export class TcpBalancer {
  private next = 0;
  private readonly sockets = new Set<net.Socket>();
  /** Backends whose readiness probe failed last (skipped for new connections, as Kubernetes drops unready endpoints). */
  private readonly unready = new Set<number>();
  private probe?: NodeJS.Timeout;
  /** Connections forwarded, by backend port. */
  readonly forwarded = new Map<number, number>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly backends: number[],
  ) {}

  /** With `readinessPath`, each backend is probed every 100 ms and left out of new connections while not ready. */
  static async start(backends: number[], options: { readinessPath?: string } = {}): Promise<TcpBalancer> {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const balancer = new TcpBalancer(server, (server.address() as net.AddressInfo).port, backends);
    server.on('connection', (client) => balancer.accept(client));
    if (options.readinessPath) balancer.watch(options.readinessPath);
    return balancer;
  }

  private watch(path: string): void {
    this.probe = setInterval(() => {
      for (const port of this.backends) {
        fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(500) }).then(
          (res) => (res.status === 200 ? this.unready.delete(port) : this.unready.add(port)),
          () => this.unready.add(port),
        );
      }
    }, 100);
  }

  /** The next backend in turn, skipping unready ones (unless all are). */
  private pick(): number {
    for (let i = 0; i < this.backends.length; i++) {
      const port = this.backends[this.next++ % this.backends.length];
      if (!this.unready.has(port)) return port;
    }
    return this.backends[this.next++ % this.backends.length];
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket, tried = 0): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    if (tried >= this.backends.length) {
      client.destroy();
      return;
    }
    const port = this.pick();
    const upstream = net.connect(port, '127.0.0.1');
    this.sockets.add(upstream);
    upstream.on('close', () => this.sockets.delete(upstream));
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      this.forwarded.set(port, (this.forwarded.get(port) ?? 0) + 1);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.on('error', () => {
      if (!connected) {
        this.sockets.delete(upstream);
        this.accept(client, tried + 1); // refused: try the next backend
      } else client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => connected && client.destroy());
  }

  async close(): Promise<void> {
    clearInterval(this.probe);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
