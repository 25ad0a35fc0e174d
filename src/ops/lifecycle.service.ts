import { Injectable } from '@nestjs/common';

type DrainHook = () => Promise<void> | void;

/** Knows whether this replica is draining (SIGTERM): readiness fails and streams are told to reconnect elsewhere. */
@Injectable()
export class LifecycleService {
  private draining = false;
  private readonly hooks: DrainHook[] = [];

  get isDraining(): boolean {
    return this.draining;
  }

  onDrain(hook: DrainHook): void {
    this.hooks.push(hook);
  }

  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await Promise.allSettled(this.hooks.map((hook) => hook()));
  }
}
