import { backoffDelay, sleep } from './backoff.js';
import { follow, type FollowOptions, type ResetInfo } from './follow.js';
import { HttpError } from './errors.js';
import { requestJson } from './http.js';
import type { ChangeEvent, DiscoverySnapshot, Prompt, Section, SectionTypes } from './types.js';

export type MirrorOptions = Omit<FollowOptions, 'events' | 'from' | 'onReset' | 'cursorStore'>;

/** What a `change` event of a mirror carries: the event and what it did to one entry (`value` undefined: removed). */
export interface MirrorChange {
  readonly event: ChangeEvent | undefined;
  readonly section: Section;
  readonly key: string;
  readonly value: SectionTypes[Section] | undefined;
}

const SECTIONS: readonly Section[] = ['agents', 'prompts', 'mcp_servers', 'trust_rules'];

const SECTION_OF: Record<string, Section> = { agent: 'agents', prompt: 'prompts', mcp_server: 'mcp_servers', trust_rule: 'trust_rules' };

/** The key of an entry in its section: the id, `<agentId>/<version>` for prompts (as events name them). */
export function keyOf(section: Section, value: Entry): string {
  return section === 'prompts' ? `${(value as Prompt).agentId}/${value.version}` : (value as Exclude<Entry, Prompt>).id;
}

/** An entry of any section. */
export type Entry = SectionTypes[Section];

function pathOf(section: Section, key: string): string {
  switch (section) {
    case 'agents':
      return `/agents/${encodeURIComponent(key)}`;
    case 'prompts': {
      const slash = key.lastIndexOf('/');
      return `/agents/${encodeURIComponent(key.slice(0, slash))}/prompts/${encodeURIComponent(key.slice(slash + 1))}`;
    }
    case 'mcp_servers':
      return `/mcp-servers/${encodeURIComponent(key)}`;
    case 'trust_rules':
      return `/trust-rules/${encodeURIComponent(key)}`;
  }
}

/**
 * An in-memory replica of the whole registry, kept up to date: one discovery
 * snapshot and its cursor, then the change stream from that cursor; each
 * event's resource is fetched again (or removed), in `seq` order. A `reset`
 * reloads the snapshot. Events: `change` (detail: `MirrorChange`),
 * `reload` (a snapshot was loaded), `error` (detail: the error that ended it).
 *
 * @example
 * ```ts
 * const registry = mirror({ baseUrl: 'http://127.0.0.1:3000', apiKey });
 * await registry.ready;
 * console.log(registry.list('agents').map((a) => a.id));
 * ```
 */
export class RegistryMirror extends EventTarget {
  /** Resolves once the first snapshot is loaded; rejects if it cannot be (bad key, service down at the start…). */
  readonly ready: Promise<void>;
  /** Resolves when the mirror has stopped (`close()`, abort, or a fatal error, which also fires `error`). */
  readonly done: Promise<void>;
  private readonly data = new Map<Section, Map<string, Entry>>(SECTIONS.map((s) => [s, new Map<string, Entry>()]));
  private position = 0;
  private readonly controller = new AbortController();

  constructor(private readonly options: MirrorOptions) {
    super();
    options.signal?.addEventListener('abort', () => this.controller.abort(options.signal!.reason), { once: true });
    const signal = this.controller.signal;
    this.ready = this.load();
    this.done = this.ready.then(
      () => this.run(signal),
      () => undefined,
    );
  }

  /** The `seq` the mirror reflects: every event up to it has been applied. */
  get cursor(): number {
    return this.position;
  }

  /** One entry by its key (the id; `<agentId>/<version>` for prompts). */
  get<S extends Section>(section: S, key: string): SectionTypes[S] | undefined {
    return this.data.get(section)!.get(key) as SectionTypes[S] | undefined;
  }

  /** Every entry of a section, in no particular order. */
  list<S extends Section>(section: S): SectionTypes[S][] {
    return [...this.data.get(section)!.values()] as SectionTypes[S][];
  }

  /** A plain copy of every section and the cursor, shaped like `GET /discovery` (entries sorted by key). */
  snapshot(): DiscoverySnapshot {
    const sorted = <S extends Section>(s: S): SectionTypes[S][] =>
      [...this.data.get(s)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v as SectionTypes[S]);
    return {
      cursor: this.position,
      agents: sorted('agents'),
      prompts: sorted('prompts'),
      mcp_servers: sorted('mcp_servers'),
      trust_rules: sorted('trust_rules'),
    };
  }

  /** Stops following; the data stays readable. */
  close(): void {
    this.controller.abort();
  }

  private async load(): Promise<void> {
    const { body } = await requestJson<DiscoverySnapshot>(this.options, 'GET', '/discovery', { signal: this.controller.signal });
    for (const section of SECTIONS) {
      const map = this.data.get(section)!;
      map.clear();
      for (const value of body[section] ?? []) map.set(keyOf(section, value), value);
    }
    this.position = body.cursor;
    this.dispatchEvent(new CustomEvent('reload', { detail: { cursor: body.cursor } }));
  }

  private async run(signal: AbortSignal): Promise<void> {
    try {
      for await (const event of follow({
        ...this.options,
        from: this.position,
        signal,
        onReset: async (_info: ResetInfo) => {
          await retrying(this.options, signal, () => this.load());
        },
      })) {
        await this.apply(event, signal);
        this.position = Math.max(this.position, event.seq); // after a reset the reloaded snapshot may already be past it
      }
    } catch (error) {
      if (!signal.aborted) this.dispatchEvent(new CustomEvent('error', { detail: error }));
    }
  }

  private async apply(event: ChangeEvent, signal: AbortSignal): Promise<void> {
    const section = SECTION_OF[event.resource];
    if (!section) return; // system notices
    if (event.action === 'health_changed' || event.action === 'circuit_changed') return; // health, not the server's record
    if (event.action === 'deleted') {
      this.remove(event, section, event.id);
      if (section === 'agents') {
        // An agent's prompts go with it; only agent.deleted is emitted.
        for (const [key, prompt] of this.data.get('prompts')!) if ((prompt as Prompt).agentId === event.id) this.remove(event, 'prompts', key);
      }
      return;
    }
    await this.refresh(event, section, event.id, signal);
    if (event.type === 'prompt.activated') {
      const data = event.data as { agentId: string; previous?: number | null };
      if (data.previous !== undefined && data.previous !== null) await this.refresh(event, 'prompts', `${data.agentId}/${data.previous}`, signal);
      await this.refresh(event, 'agents', data.agentId, signal);
    }
  }

  /** Fetches one entry as it is now (a later state than the event's is fine: its own events follow); gone (404) → removed. */
  private async refresh(event: ChangeEvent, section: Section, key: string, signal: AbortSignal): Promise<void> {
    const value = await retrying(this.options, signal, async () => {
      try {
        return (await requestJson<Entry>(this.options, 'GET', pathOf(section, key), { signal })).body;
      } catch (error) {
        if (error instanceof HttpError && error.status === 404) return undefined;
        throw error;
      }
    });
    if (value === undefined) return this.remove(event, section, key);
    this.data.get(section)!.set(key, value);
    this.dispatchEvent(new CustomEvent<MirrorChange>('change', { detail: { event, section, key, value } }));
  }

  private remove(event: ChangeEvent, section: Section, key: string): void {
    if (!this.data.get(section)!.delete(key)) return;
    this.dispatchEvent(new CustomEvent<MirrorChange>('change', { detail: { event, section, key, value: undefined } }));
  }
}

/** Runs `fn` until it succeeds, backing off after a failure that may pass (a network error, 408, 429, 5xx: a replica restarting); others are thrown. */
async function retrying<T>(options: MirrorOptions, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (signal.aborted || (error instanceof HttpError && !error.retryable) || error instanceof SyntaxError) throw error;
      await sleep(backoffDelay(attempt, options.backoff), signal);
    }
  }
}

/** A local replica of the registry: `const m = mirror({ baseUrl, apiKey }); await m.ready; m.list('agents')`. */
export function mirror(options: MirrorOptions): RegistryMirror {
  return new RegistryMirror(options);
}
