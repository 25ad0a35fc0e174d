import { decodeBatch, encodeBatch, toWire } from './wire-event.js';

describe('wire batch encoding', () => {
  it('round-trips events, keeping the JSON verbatim (tabs and newlines in data are escaped by JSON)', () => {
    const events = [
      toWire({ seq: 41, type: 'agent.created', resource: 'agent', id: 'pmo', action: 'created', ts: '2026-01-01T00:00:00.000Z' }),
      toWire({ seq: 42, type: 'prompt.activated', resource: 'prompt', id: 'pmo/2', action: 'activated', ts: 'x', data: { note: 'a\tb\nc' } }),
    ];
    const decoded = decodeBatch(encodeBatch(events));
    expect(decoded).toEqual(events);
    expect(JSON.parse(decoded[1].json).data.note).toBe('a\tb\nc');
  });

  it('decodes an empty message to nothing', () => {
    expect(decodeBatch('')).toEqual([]);
  });
});
