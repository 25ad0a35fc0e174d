/// <reference types="node" />
/**
 * Node-only helpers (`@agentic-registry/client/node`): kept out of the main
 * entry so that browser bundles never see `node:fs`.
 * @module node
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CursorStore } from './cursor-store.js';

/**
 * A cursor kept in a file, so that a restarted process resumes where it left
 * off. Writes are atomic (a temporary file renamed over the old one) and
 * coalesced: while one write is in flight, only the newest position is
 * written next.
 */
export function fileCursorStore(path: string): CursorStore {
  let writing: Promise<void> | undefined;
  let next: number | undefined;
  const flush = async (): Promise<void> => {
    while (next !== undefined) {
      const seq = next;
      next = undefined;
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, `${seq}\n`);
      await rename(tmp, path);
    }
  };
  return {
    async load() {
      try {
        const text = (await readFile(path, 'utf8')).trim();
        const seq = Number(text);
        if (!/^\d+$/.test(text) || !Number.isSafeInteger(seq)) throw new Error(`${path} does not hold a cursor: ${JSON.stringify(text.slice(0, 40))}`);
        return seq;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
    save(seq) {
      next = seq;
      const start = (): Promise<void> =>
        flush().finally(() => {
          writing = next === undefined ? undefined : start();
        });
      writing ??= start();
      return writing;
    },
  };
}
