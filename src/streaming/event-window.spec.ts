import { EventWindow, toHubEvent } from './event-window.js';

const ev = (seq: number) => toHubEvent({ seq, type: 'agent.updated', resource: 'agent', json: `{"seq":${seq}}` });

describe('EventWindow', () => {
  it('keeps the newest events and serves cursors inside it', () => {
    const w = new EventWindow(3);
    [1, 2, 3, 4, 5].forEach((s) => w.push(ev(s)));
    expect(w.floor).toBe(2);
    expect(w.last).toBe(5);
    expect(w.after(2, 10)!.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(w.after(4, 10)!.map((e) => e.seq)).toEqual([5]);
    expect(w.after(5, 10)).toEqual([]);
    expect(w.after(3, 1)!.map((e) => e.seq)).toEqual([4]);
    expect(w.after(1, 10)).toBeUndefined();
  });

  it('drops its content rather than holding a gap', () => {
    const w = new EventWindow(5);
    [1, 2].forEach((s) => w.push(ev(s)));
    w.push(ev(7));
    expect(w.floor).toBe(6);
    expect(w.after(2, 10)).toBeUndefined();
  });

  it('frames events for SSE once', () => {
    expect(ev(9).frame.toString()).toBe('id: 9\nevent: agent.updated\ndata: {"seq":9}\n\n');
  });
});
