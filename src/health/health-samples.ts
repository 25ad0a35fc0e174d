import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { CheckResult } from './health.types.js';

/** How long a server's samples stay in Redis after its last check. */
const SAMPLES_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * The last N check results of every server. In Redis (one capped list per
 * server, newest first) so any replica answers `GET …/health` with what the
 * owning replica measured, and a replica that takes a server over knows when
 * it was last checked; each replica also keeps its own results in memory,
 * which is what it serves without Redis or while Redis is away.
 */
export class HealthSamples {
  private readonly logger = new Logger('HealthSamples');
  private readonly local = new Map<string, CheckResult[]>();
  private warned = false;

  constructor(
    readonly size: number,
    private readonly redis: Redis | null,
    private readonly prefix: string,
  ) {}

  private key(serverId: string): string {
    return `${this.prefix}:health:samples:${serverId}`;
  }

  private usable(): boolean {
    return this.redis !== null && this.redis.status === 'ready';
  }

  async push(result: CheckResult): Promise<void> {
    const list = this.local.get(result.serverId) ?? [];
    list.unshift(result);
    if (list.length > this.size) list.length = this.size;
    this.local.set(result.serverId, list);
    if (!this.usable()) return;
    try {
      const key = this.key(result.serverId);
      await this.redis!.multi()
        .lpush(key, JSON.stringify(result))
        .ltrim(key, 0, this.size - 1)
        .pexpire(key, SAMPLES_TTL_MS)
        .exec();
      this.warned = false;
    } catch (error) {
      if (!this.warned) this.logger.warn(`keeping health samples in memory only: ${(error as Error).message}`);
      this.warned = true;
    }
  }

  /** The newest `count` samples of each server (newest first). */
  async recent(serverIds: readonly string[], count = this.size): Promise<Map<string, CheckResult[]>> {
    const out = new Map<string, CheckResult[]>();
    if (serverIds.length === 0 || count <= 0) return out;
    if (this.usable()) {
      try {
        const pipeline = this.redis!.pipeline();
        for (const id of serverIds) pipeline.lrange(this.key(id), 0, count - 1);
        const results = (await pipeline.exec()) ?? [];
        serverIds.forEach((id, i) => {
          const [error, lines] = results[i] ?? [new Error('no reply')];
          if (error) throw error;
          const parsed = (lines as string[]).map((l) => JSON.parse(l) as CheckResult);
          out.set(id, parsed.length > 0 ? parsed : (this.local.get(id) ?? []).slice(0, count));
        });
        return out;
      } catch {
        out.clear();
      }
    }
    for (const id of serverIds) out.set(id, (this.local.get(id) ?? []).slice(0, count));
    return out;
  }

  async remove(serverId: string): Promise<void> {
    this.local.delete(serverId);
    if (this.usable()) await this.redis!.del(this.key(serverId)).catch(() => undefined);
  }

  /** Drops the memory copy of servers this replica no longer probes (their samples stay in Redis). */
  forget(serverId: string): void {
    this.local.delete(serverId);
  }
}
