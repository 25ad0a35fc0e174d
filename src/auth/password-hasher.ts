import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';
import { hashPassword, verifyPassword } from './secrets.js';

/** Waiting hashes per running slot; beyond that a request is turned away at once. */
const QUEUE_PER_SLOT = 8;

/**
 * Every password hash of this replica goes through here, so at most
 * PASSWORD_HASH_CONCURRENCY scrypt computations (128 MiB and a libuv thread
 * each) run at once, whoever asks: the libuv pool that DNS, files and
 * crypto share is never filled with password work, and a flood of logins
 * (already throttled per user and per address) costs bounded CPU and memory.
 * A bounded queue absorbs bursts; beyond it the caller gets 503 + Retry-After.
 */
@Injectable()
export class PasswordHasher {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: number;
  private readonly rejected: Counter;

  constructor(@Inject(APP_CONFIG) config: AppConfig, metrics: MetricsService) {
    this.limit = config.security.passwordHashConcurrency;
    this.rejected = new Counter({
      name: 'registry_password_hash_rejected_total',
      help: 'Password hashes refused because the bounded hashing queue was full',
      registers: [metrics.registry],
    });
  }

  hash(password: string): Promise<string> {
    return this.run(() => hashPassword(password));
  }

  verify(password: string, stored: string): Promise<boolean> {
    return this.run(() => verifyPassword(password, stored));
  }

  get busy(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      if (this.waiting.length >= this.limit * QUEUE_PER_SLOT) {
        this.rejected.inc();
        throw new DomainError('service_unavailable', 'too many password checks in progress; retry shortly', { headers: { 'retry-after': '1' } });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter (running stays the same).
      if (next) next();
      else this.running--;
    }
  }
}
