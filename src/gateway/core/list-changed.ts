/**
 * How often at most a client is told that a list changed (`notifications/tools/list_changed` and the like), per
 * session and source: the first change at once, further ones within this window once more at its end.
 */
export const LIST_CHANGED_WINDOW_MS = 250;

/** The `…/list_changed` notifications a backend may send (they carry nothing but the fact). */
export const LIST_CHANGED_METHODS: ReadonlySet<string> = new Set([
  'notifications/tools/list_changed',
  'notifications/resources/list_changed',
  'notifications/prompts/list_changed',
]);

interface Window {
  timer: NodeJS.Timeout;
  /** The announcement to make when the window ends (a change came during it). */
  pending?: () => void;
}

/**
 * List-change announcements coalesced per key, grouped (a group is a session;
 * a key what changed in it): the first change opens a window and is announced
 * at once (leading edge); changes during the window make one announcement at
 * its end (trailing edge), which opens the next window. A backend flooding
 * list_changed so reaches a client at most once per `windowMs` (plus the
 * leading one), and the last change is always announced after it happened:
 * each client re-lists after it, never thousands of times. A window with no
 * change in it ends without a trace (no timer is left behind).
 */
export class ListChangedCoalescer {
  private readonly groups = new Map<string, Map<string, Window>>();
  private closed = false;

  constructor(
    private readonly windowMs = LIST_CHANGED_WINDOW_MS,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Something changed: `announce` runs now, or once when the key's open window ends (the latest one given). */
  changed(group: string, key: string, announce: () => void): void {
    if (this.closed) return;
    const open = this.groups.get(group)?.get(key);
    if (open) {
      open.pending = announce;
      return;
    }
    this.open(group, key);
    this.run(announce);
  }

  /** Ends a group's windows without their pending announcements (the session is gone: nothing more is written for it). */
  forget(group: string): void {
    const windows = this.groups.get(group);
    if (!windows) return;
    this.groups.delete(group);
    for (const w of windows.values()) clearTimeout(w.timer);
  }

  /** Ends a group's windows, making their pending announcements now (the session lives on, but not here). */
  flush(group: string): void {
    const windows = this.groups.get(group);
    if (!windows) return;
    this.forget(group);
    for (const w of windows.values()) if (w.pending) this.run(w.pending);
  }

  /** Ends every window (pending announcements made now with `flush`, else dropped); later changes are ignored. */
  close(flush: boolean): void {
    for (const group of [...this.groups.keys()]) {
      if (flush) this.flush(group);
      else this.forget(group);
    }
    this.closed = true;
  }

  /** Open windows (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const windows of this.groups.values()) n += windows.size;
    return n;
  }

  private open(group: string, key: string): void {
    let windows = this.groups.get(group);
    if (!windows) {
      windows = new Map();
      this.groups.set(group, windows);
    }
    const w: Window = {
      timer: setTimeout(() => {
        const current = this.groups.get(group);
        if (current?.get(key) !== w) return;
        current.delete(key);
        if (current.size === 0) this.groups.delete(group);
        if (!w.pending || this.closed) return;
        this.open(group, key);
        this.run(w.pending);
      }, this.windowMs),
    };
    w.timer.unref();
    windows.set(key, w);
  }

  private run(announce: () => void): void {
    try {
      announce();
    } catch (error) {
      this.onError(error);
    }
  }
}
