import { type ChangeEvent, type EventType, type Resource, splitType } from '../events/event-catalog.js';

/**
 * An event as it travels the bus and sits in a replica's window: the delta's
 * JSON is produced once by the publisher and used verbatim by every replica,
 * so no replica serializes an event more than once.
 */
export interface WireEvent {
  readonly seq: number;
  readonly type: EventType;
  readonly resource: Resource;
  /** The delta as JSON text (the SSE `data:` line and the Socket.IO payload). */
  readonly json: string;
}

export function toWire(event: ChangeEvent): WireEvent {
  return { seq: event.seq, type: event.type, resource: event.resource, json: JSON.stringify(event) };
}

/** One bus message carries a batch: a line per event, `seq<TAB>type<TAB>json`. */
export function encodeBatch(events: readonly WireEvent[]): string {
  let out = '';
  for (const e of events) out += `${e.seq}\t${e.type}\t${e.json}\n`;
  return out;
}

export function decodeBatch(message: string): WireEvent[] {
  const out: WireEvent[] = [];
  let start = 0;
  while (start < message.length) {
    let end = message.indexOf('\n', start);
    if (end === -1) end = message.length;
    const tab1 = message.indexOf('\t', start);
    const tab2 = message.indexOf('\t', tab1 + 1);
    if (tab1 > start && tab2 > tab1 && tab2 < end) {
      const type = message.slice(tab1 + 1, tab2) as EventType;
      out.push({ seq: Number(message.slice(start, tab1)), type, resource: splitType(type).resource, json: message.slice(tab2 + 1, end) });
    }
    start = end + 1;
  }
  return out;
}
