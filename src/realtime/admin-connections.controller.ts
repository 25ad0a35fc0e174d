import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { z } from 'zod';
import { RequireRole } from '../auth/principal.js';
import { EventBus } from '../bus/event-bus.js';
import { ZodPipe } from '../common/zod-validation.pipe.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { Inject } from '@nestjs/common';
import { ConnectionRegistry } from './connection-registry.js';

const disconnectSchema = z.strictObject({
  /** The principal id as listed by GET /admin/connections (`user:<uuid>` or `key:<uuid>`). */
  userId: z.string().min(1).max(100),
});

/** Live connections across the cluster, and dropping a principal's sockets everywhere. Admins only. */
@Controller('api/v1/admin/connections')
@RequireRole('admin')
export class AdminConnectionsController {
  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly bus: EventBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Open connections by transport, principal and replica, from every live
   * replica's last report (at most a couple of seconds old; this replica's is exact).
   */
  @Get()
  async list() {
    const replicas = await this.registry.all();
    const totals = { sse: 0, socketio: 0 };
    const byUser = new Map<string, { userId: string; name: string; kind: string; sse: number; socketio: number }>();
    for (const r of replicas) {
      for (const transport of ['sse', 'socketio'] as const) {
        for (const [userId, n] of Object.entries(r[transport])) {
          totals[transport] += n;
          const who = r.principals[userId];
          const row = byUser.get(userId) ?? {
            userId,
            name: who?.name ?? userId,
            kind: who?.kind ?? (userId.startsWith('key:') ? 'api_key' : 'user'),
            sse: 0,
            socketio: 0,
          };
          if (who) row.name = who.name;
          row[transport] += n;
          byUser.set(userId, row);
        }
      }
    }
    return {
      replica: this.config.replicaId,
      totals,
      replicas: replicas.map((r) => ({
        replica: r.replica,
        at: r.at,
        sse: Object.values(r.sse).reduce((a, b) => a + b, 0),
        socketio: Object.values(r.socketio).reduce((a, b) => a + b, 0),
      })),
      users: [...byUser.values()].sort((a, b) => a.name.localeCompare(b.name)),
    };
  }

  /** Drops every Socket.IO connection of a principal, on every replica (they may reconnect: revoke the credential to keep them out). */
  @Post('disconnect')
  @HttpCode(202)
  async disconnect(@Body(new ZodPipe(disconnectSchema)) body: z.infer<typeof disconnectSchema>) {
    await this.bus.publishControl({ op: 'disconnect', principalId: body.userId, reason: 'disconnected by an admin', from: this.config.replicaId });
    return { accepted: true, userId: body.userId };
  }
}
