/**
 * Where `follow()` keeps its position (the last `seq` the caller has
 * processed) so that a restarted process resumes there. `load` is read once
 * at the start; `save` is called after each event the caller has finished
 * with (when it asks for the next one), and after `cursor` and `reset` frames.
 */
export interface CursorStore {
  load(): Promise<number | undefined> | number | undefined;
  save(seq: number): Promise<void> | void;
}

/** A cursor kept in memory (the default): a reconnect resumes, a restarted process does not. */
export function memoryCursorStore(initial?: number): CursorStore & { readonly value: number | undefined } {
  let value = initial;
  return {
    get value() {
      return value;
    },
    load: () => value,
    save: (seq) => {
      value = seq;
    },
  };
}
