import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { channels } from '../events/event-catalog.js';
import { type BusListener, type ControlMessage, EventBus } from './event-bus.js';
import { RedisConnections } from './redis.connections.js';
import { decodeBatch, encodeBatch, type WireEvent } from './wire-event.js';

/**
 * Redis pub/sub backbone: publishes on the replica's command connection and
 * listens on its one subscriber connection, whatever the number of clients.
 */
@Injectable()
export class RedisBus extends EventBus {
  readonly kind = 'redis' as const;
  private readonly logger = new Logger('RedisBus');
  private readonly channel: string;
  private readonly controlChannel: string;
  private readonly controlListeners: ((message: ControlMessage) => void)[] = [];
  private listener?: BusListener;
  private readyOnce = false;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly redis: RedisConnections,
  ) {
    super();
    this.channel = channels.events(config.redisPrefix);
    this.controlChannel = channels.control(config.redisPrefix);
    const subscriber = redis.subscriber;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.listener?.onEvents(decodeBatch(message));
      else if (channel === this.controlChannel) this.control(message);
    });
    subscriber.on('ready', () => {
      // ioredis re-subscribes by itself on reconnect; anything published while
      // we were away is lost to pub/sub, so the hub back-fills from the outbox.
      if (this.readyOnce) {
        this.logger.log('subscriber reconnected; back-filling from the outbox');
        this.listener?.onResync();
      }
      this.readyOnce = true;
    });
    void subscriber.subscribe(this.channel, this.controlChannel).catch((error: Error) => this.logger.error(`subscribe failed: ${error.message}`));
  }

  /** @deprecated inject RedisConnections instead. */
  get publisher(): Redis {
    return this.redis.commands;
  }

  /** Fails at once while Redis is away (replicas back-fill from the outbox); never queues behind a reconnect. */
  async publish(events: readonly WireEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.redis.commands.status !== 'ready') throw new Error(`redis is ${this.redis.commands.status}`);
    await this.redis.commands.publish(this.channel, encodeBatch(events));
  }

  subscribe(listener: BusListener): void {
    this.listener = listener;
  }

  async publishControl(message: ControlMessage): Promise<void> {
    if (this.redis.commands.status !== 'ready') {
      // Redis is away: at least this replica acts on it.
      this.control(JSON.stringify(message));
      return;
    }
    await this.redis.commands.publish(this.controlChannel, JSON.stringify(message));
  }

  onControl(listener: (message: ControlMessage) => void): void {
    this.controlListeners.push(listener);
  }

  private control(raw: string): void {
    let message: ControlMessage;
    try {
      message = JSON.parse(raw) as ControlMessage;
    } catch {
      return;
    }
    for (const listener of this.controlListeners) {
      try {
        listener(message);
      } catch (error) {
        this.logger.warn(`control listener failed: ${(error as Error).message}`);
      }
    }
  }

  isHealthy(): boolean {
    return this.redis.ready;
  }
}
