import { toWire, type WireEvent } from '../bus/wire-event.js';
import type { ChangeEvent } from '../events/event-catalog.js';

/** A delivered event as a replica keeps it: wire form plus its SSE frame, built once. */
export interface HubEvent extends WireEvent {
  /** `id: <seq>\nevent: <type>\ndata: <json>\n\n`, encoded once per replica. */
  readonly frame: Buffer;
}

export function toHubEvent(event: WireEvent): HubEvent {
  return { ...event, frame: Buffer.from(`id: ${event.seq}\nevent: ${event.type}\ndata: ${event.json}\n\n`) };
}

/** Events read from the outbox, in the same form as those from the bus. */
export function fromOutbox(events: ChangeEvent[]): HubEvent[] {
  return events.map((e) => toHubEvent(toWire(e)));
}

/**
 * The newest `capacity` events of this replica, contiguous in seq. Resumes
 * whose cursor falls inside it are served from memory, so a reconnect storm
 * after a replica dies costs no outbox queries.
 */
export class EventWindow {
  private readonly ring: (HubEvent | undefined)[];
  private start = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<HubEvent | undefined>(Math.max(capacity, 0));
  }

  get length(): number {
    return this.size;
  }

  /** The seq just before the oldest event held (cursors >= floor can be served). */
  get floor(): number | undefined {
    return this.size === 0 ? undefined : this.at(0).seq - 1;
  }

  get last(): number | undefined {
    return this.size === 0 ? undefined : this.at(this.size - 1).seq;
  }

  private at(i: number): HubEvent {
    return this.ring[(this.start + i) % this.capacity]!;
  }

  push(event: HubEvent): void {
    if (this.capacity === 0) return;
    const last = this.last;
    if (last !== undefined && event.seq !== last + 1) {
      // Never keep a gap: start over from this event.
      this.start = 0;
      this.size = 0;
    }
    if (this.size < this.capacity) {
      this.ring[(this.start + this.size) % this.capacity] = event;
      this.size++;
    } else {
      this.ring[this.start] = event;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** Events with seq > after, at most `limit`; undefined when `after` is older than the window. */
  after(after: number, limit: number): HubEvent[] | undefined {
    const floor = this.floor;
    if (floor === undefined || after < floor) return undefined;
    const first = after - floor; // index of seq after+1
    const out: HubEvent[] = [];
    for (let i = first; i < this.size && out.length < limit; i++) out.push(this.at(i));
    return out;
  }
}
