import { Injectable } from '@nestjs/common';

type DrainHook = () => Promise<void> | void;

/** Knows whether this replica is draining (SIGTERM): readiness fails and streams are told to reconnect elsewhere. */
@Injectable()
export class LifecycleService {
  private draining = false;
  private readonly hooks: DrainHook[] = [];
  private readonly startHooks: DrainHook[] = [];
  private readonly stopAcceptingHooks: DrainHook[] = [];

  get isDraining(): boolean {
    return this.draining;
  }

  /** Runs once the drain delay is over: streams are told to go elsewhere. */
  onDrain(hook: DrainHook): void {
    this.hooks.push(hook);
  }

  /** Runs the moment draining starts (readiness already fails): e.g. closing idle keep-alive connections. */
  onDrainStart(hook: DrainHook): void {
    this.startHooks.push(hook);
  }

  /** Runs once the delay is over, before streams are told to go: the listener stops accepting. */
  onStopAccepting(hook: DrainHook): void {
    this.stopAcceptingHooks.push(hook);
  }

  /**
   * Turns unready, keeps serving for `delayMs`, stops accepting connections
   * (new ones are refused, which a proxy retries elsewhere, even a POST), then
   * runs the drain hooks (streams told to reconnect elsewhere).
   */
  async drain(delayMs = 0): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await Promise.allSettled(this.startHooks.map((hook) => Promise.resolve().then(hook)));
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    await Promise.allSettled(this.stopAcceptingHooks.map((hook) => Promise.resolve().then(hook)));
    await Promise.allSettled(this.hooks.map((hook) => Promise.resolve().then(hook)));
  }
}
