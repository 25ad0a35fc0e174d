import { Injectable } from '@nestjs/common';
import { type BusListener, ClusterState, type ControlMessage, EventBus, type SlotResult } from './event-bus.js';
import { decodeBatch, encodeBatch, type WireEvent } from './wire-event.js';

/** In-process bus for a single replica (no REDIS_URL). Delivery is asynchronous, like Redis. */
@Injectable()
export class MemoryBus extends EventBus {
  readonly kind = 'memory' as const;
  private readonly listeners: BusListener[] = [];

  async publish(events: readonly WireEvent[]): Promise<void> {
    if (events.length === 0) return;
    const message = encodeBatch(events);
    setImmediate(() => {
      for (const listener of this.listeners) listener.onEvents(decodeBatch(message));
    });
  }

  subscribe(listener: BusListener): void {
    this.listeners.push(listener);
  }

  private readonly controlListeners: ((message: ControlMessage) => void)[] = [];

  async publishControl(message: ControlMessage): Promise<void> {
    setImmediate(() => {
      for (const listener of this.controlListeners) listener(message);
    });
  }

  onControl(listener: (message: ControlMessage) => void): void {
    this.controlListeners.push(listener);
  }

  isHealthy(): boolean {
    return true;
  }
}

@Injectable()
export class MemoryClusterState extends ClusterState {
  private readonly perUser = new Map<string, number>();
  private total = 0;

  async acquireConnection(userId: string, perUser: number, total: number): Promise<SlotResult> {
    const current = this.perUser.get(userId) ?? 0;
    if (current >= perUser) return 'user_limit';
    if (this.total >= total) return 'total_limit';
    this.perUser.set(userId, current + 1);
    this.total++;
    return 'ok';
  }

  async releaseConnection(userId: string): Promise<void> {
    const current = this.perUser.get(userId) ?? 0;
    if (current <= 0) return;
    if (current === 1) this.perUser.delete(userId);
    else this.perUser.set(userId, current - 1);
    this.total--;
  }

  async connectionCounts(userId: string): Promise<{ user: number; total: number }> {
    return { user: this.perUser.get(userId) ?? 0, total: this.total };
  }
}
