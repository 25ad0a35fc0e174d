import { DomainError } from '../common/domain-error.js';
import { canRead, type Role } from '../auth/roles.js';
import { EVENT_TYPES, type EventType, isEventType, RESOURCES, type Resource } from '../events/event-catalog.js';

/**
 * Which event types a subscriber receives: what it asked for (`?events=`),
 * narrowed to what its role may read. Subscribers with equal filters share
 * one `key`, so a batch is encoded once per distinct filter, not per connection.
 */
export class EventFilter {
  private readonly allowed: ReadonlySet<EventType>;
  readonly all: boolean;
  readonly key: string;

  private constructor(types: readonly EventType[]) {
    this.allowed = new Set(types);
    this.all = types.length === EVENT_TYPES.length;
    this.key = this.all ? '*' : [...types].sort().join(',');
  }

  matches(type: EventType): boolean {
    return this.all || this.allowed.has(type);
  }

  get types(): EventType[] {
    return [...this.allowed];
  }

  /**
   * Parses `agent.updated,prompt.*` (exact names and `resource.*`; empty or
   * `*` means everything) and intersects it with what `role` may read.
   */
  static parse(spec: string | undefined, role: Role, field = 'events'): EventFilter {
    const wanted = new Set<EventType>();
    const parts = (spec ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (parts.length === 0 || parts.includes('*')) EVENT_TYPES.forEach((t) => wanted.add(t));
    for (const part of parts) {
      if (part === '*') continue;
      if (part.endsWith('.*')) {
        const resource = part.slice(0, -2);
        if (!(RESOURCES as readonly string[]).includes(resource)) {
          throw DomainError.field(field, `unknown resource "${resource}" in "${part}"; known: ${RESOURCES.join(', ')}`);
        }
        EVENT_TYPES.filter((t) => t.startsWith(`${resource}.`)).forEach((t) => wanted.add(t));
      } else if (isEventType(part)) {
        wanted.add(part);
      } else {
        throw DomainError.field(field, `unknown event type "${part}"`);
      }
    }
    return new EventFilter([...wanted].filter((t) => canRead(role, t.slice(0, t.indexOf('.')) as Resource)));
  }
}
