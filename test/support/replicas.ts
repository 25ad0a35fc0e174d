import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { freePort } from './ports.mjs';
import { sleep, testAdminKey } from './test-env.js';

export interface Replica {
  readonly name: string;
  readonly id: string;
  readonly url: string;
  readonly process: ChildProcess;
  output: string;
  exitCode?: number | null;
  exited: Promise<number | null>;
}

/**
 * Runs real service processes (`node dist/main.js`, built by `npm test`)
 * against one database and one Redis, as a cluster would.
 */
export class Cluster {
  readonly replicas: Replica[] = [];
  readonly adminKey = testAdminKey();
  readonly prefix = `c${randomBytes(4).toString('hex')}`;

  constructor(
    private readonly databaseUrl: string,
    private readonly redisUrl: string,
    private readonly env: Record<string, string> = {},
  ) {}

  async start(name: string, env: Record<string, string> = {}): Promise<Replica> {
    const port = await freePort();
    const id = `${name}-${randomBytes(3).toString('hex')}`;
    const child = spawn(process.execPath, [path.resolve('dist/main.js')], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'test',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: this.databaseUrl,
        REDIS_URL: this.redisUrl,
        REDIS_PREFIX: this.prefix,
        REPLICA_ID: id,
        BOOTSTRAP_ADMIN_KEY: this.adminKey,
        LOG_LEVEL: 'warn',
        SEQUENCER_POLL_MS: '500',
        STREAM_HEAD_POLL_MS: '250',
        ...this.env,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const replica: Replica = {
      name,
      id,
      url: `http://127.0.0.1:${port}`,
      process: child,
      output: '',
      exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    };
    child.stdout.on('data', (d: Buffer) => (replica.output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (replica.output += d.toString()));
    void replica.exited.then((code) => (replica.exitCode = code));
    this.replicas.push(replica);
    await this.waitReady(replica);
    return replica;
  }

  async waitReady(replica: Replica, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (replica.exitCode !== undefined) throw new Error(`${replica.name} exited (${replica.exitCode}):\n${replica.output}`);
      try {
        const res = await fetch(`${replica.url}/readyz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`${replica.name} not ready in ${timeoutMs} ms:\n${replica.output}`);
      await sleep(100);
    }
  }

  /** Ends every replica this cluster started, by pid. */
  async stop(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (r) => {
        if (r.exitCode !== undefined) return;
        r.process.kill('SIGKILL');
        await r.exited;
      }),
    );
  }
}

/** A replica's first sample of `name` (plain or labelled) from /metrics; NaN when it is not there. */
export async function replicaMetric(replica: Replica, name: string): Promise<number> {
  const text = await (await fetch(`${replica.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? Number.NaN : Number(line.split(' ').pop());
}
