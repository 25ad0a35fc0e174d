import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';

/*
 * Deferred tool loading, pure (no Nest, no I/O): a client connected to
 * backends with hundreds of tools first sees only two meta tools,
 * `search_tools` and `activate_tools`; activating tools adds them to the
 * exposed list (the caller then announces `notifications/tools/list_changed`).
 * Used by `/mcp` (src/gateway/mcp) and by streaming sessions.
 */

export const SEARCH_TOOLS = 'search_tools';
export const ACTIVATE_TOOLS = 'activate_tools';
export const META_TOOL_NAMES: readonly string[] = [SEARCH_TOOLS, ACTIVATE_TOOLS];

/** Results of one search at most (and the default). */
export const MAX_SEARCH_RESULTS = 50;
export const DEFAULT_SEARCH_RESULTS = 20;
/** Longest query, names per activation, characters of a description in search results. */
export const MAX_QUERY_LENGTH = 500;
export const MAX_ACTIVATE_NAMES = 100;
export const MAX_RESULT_DESCRIPTION = 300;

export interface ToolMatch {
  readonly name: string;
  readonly description: string;
}

export interface SearchResult {
  readonly tools: ToolMatch[];
  /** Matches in all (the list is cut at the limit). */
  readonly total: number;
}

export interface ActivationResult {
  /** Newly exposed by this call (the exposed list changed iff this is non-empty). */
  readonly added: string[];
  readonly alreadyActive: string[];
  /** Not in the catalog (never exposed). */
  readonly unknown: string[];
}

export interface MetaCallOutcome {
  readonly result: CallToolResult;
  /** The exposed list changed: announce `notifications/tools/list_changed`. */
  readonly changed: boolean;
}

/** The two meta tools, as `tools/list` shows them. */
export function metaTools(): Tool[] {
  return [
    {
      name: SEARCH_TOOLS,
      title: 'Search tools',
      description:
        'Search the tools of every MCP server you may reach (names and descriptions). Returns matching tool names, which activate_tools then makes callable.',
      inputSchema: {
        type: 'object',
        properties: {
          query: {
            type: 'string',
            description: 'Words to look for in tool names and descriptions (empty: list the first tools).',
            maxLength: MAX_QUERY_LENGTH,
          },
          limit: { type: 'integer', minimum: 1, maximum: MAX_SEARCH_RESULTS, description: `Most results returned (default ${DEFAULT_SEARCH_RESULTS}).` },
        },
      },
      annotations: { readOnlyHint: true },
    },
    {
      name: ACTIVATE_TOOLS,
      title: 'Activate tools',
      description: 'Make tools found with search_tools callable in this session: they are added to the tool list (tools/list_changed is announced).',
      inputSchema: {
        type: 'object',
        properties: {
          names: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: MAX_ACTIVATE_NAMES, description: 'Namespaced tool names (server__tool).' },
        },
        required: ['names'],
      },
    },
  ];
}

/** Lower-case words of a text; `server__tool_name` and `camelCase` are split too. */
export function words(text: string): string[] {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

interface Indexed {
  readonly tool: Tool;
  readonly nameWords: Set<string>;
  readonly descriptionWords: Set<string>;
  readonly lowerName: string;
}

function matchesWord(set: Set<string>, word: string): boolean {
  if (set.has(word)) return true;
  if (word.length < 3) return false;
  for (const w of set) if (w.startsWith(word)) return true;
  return false;
}

/**
 * The namespaced tools a caller may reach, and which of them this session has
 * activated. Activations of tools that later disappear from the catalog stay
 * remembered (they come back if the tool does) but are not exposed.
 */
export class DeferredToolCatalog {
  private readonly byName = new Map<string, Indexed>();
  private readonly active: string[] = [];
  private readonly activeSet = new Set<string>();

  constructor(tools: readonly Tool[], activated: Iterable<string> = []) {
    this.replaceTools(tools);
    for (const name of activated) {
      if (!this.activeSet.has(name) && !META_TOOL_NAMES.includes(name)) {
        this.activeSet.add(name);
        this.active.push(name);
      }
    }
  }

  /** New tool list (a backend's tools changed); activations are kept. */
  replaceTools(tools: readonly Tool[]): void {
    this.byName.clear();
    for (const tool of tools) {
      if (META_TOOL_NAMES.includes(tool.name)) continue;
      this.byName.set(tool.name, {
        tool,
        lowerName: tool.name.toLowerCase(),
        nameWords: new Set(words(tool.name)),
        descriptionWords: new Set(words(`${tool.title ?? ''} ${tool.description ?? ''}`)),
      });
    }
  }

  get size(): number {
    return this.byName.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Names activated in this session, in activation order (some may be gone from the catalog). */
  activated(): string[] {
    return [...this.active];
  }

  isActive(name: string): boolean {
    return this.activeSet.has(name) && this.byName.has(name);
  }

  /** What `tools/list` shows: the meta tools, then the activated tools still in the catalog. */
  exposed(): Tool[] {
    const tools = metaTools();
    for (const name of this.active) {
      const entry = this.byName.get(name);
      if (entry) tools.push(entry.tool);
    }
    return tools;
  }

  /**
   * Tools whose name or description contain the query's words (a word of 3+
   * letters also matches as a prefix), best first: a name match counts more
   * than a description match, and tools matching more words come first. An
   * empty query lists the tools by name.
   */
  search(query: string, limit = DEFAULT_SEARCH_RESULTS): SearchResult {
    const max = Math.max(1, Math.min(MAX_SEARCH_RESULTS, Math.floor(limit) || DEFAULT_SEARCH_RESULTS));
    const wanted = [...new Set(words(query.slice(0, MAX_QUERY_LENGTH)))].slice(0, 32);
    const whole = query.trim().toLowerCase();
    const scored: { entry: Indexed; score: number }[] = [];
    for (const entry of this.byName.values()) {
      if (wanted.length === 0) {
        scored.push({ entry, score: 0 });
        continue;
      }
      let score = 0;
      let matched = 0;
      for (const word of wanted) {
        const inName = matchesWord(entry.nameWords, word);
        const inDescription = matchesWord(entry.descriptionWords, word);
        if (inName || inDescription) matched++;
        score += (inName ? 3 : 0) + (inDescription ? 1 : 0);
      }
      if (matched === 0) continue;
      if (entry.lowerName === whole || entry.lowerName.endsWith(`__${whole}`)) score += 10;
      scored.push({ entry, score: score + matched * 2 });
    }
    scored.sort((a, b) => b.score - a.score || (a.entry.tool.name < b.entry.tool.name ? -1 : a.entry.tool.name > b.entry.tool.name ? 1 : 0));
    return {
      total: scored.length,
      tools: scored.slice(0, max).map(({ entry }) => ({ name: entry.tool.name, description: (entry.tool.description ?? '').slice(0, MAX_RESULT_DESCRIPTION) })),
    };
  }

  /** Adds known names to the exposed set (at most MAX_ACTIVATE_NAMES per call). */
  activate(names: readonly string[]): ActivationResult {
    const added: string[] = [];
    const alreadyActive: string[] = [];
    const unknown: string[] = [];
    for (const name of new Set(names.slice(0, MAX_ACTIVATE_NAMES))) {
      if (!this.byName.has(name)) unknown.push(name);
      else if (this.activeSet.has(name)) alreadyActive.push(name);
      else {
        this.activeSet.add(name);
        this.active.push(name);
        added.push(name);
      }
    }
    return { added, alreadyActive, unknown };
  }

  /**
   * Runs a meta tool call (`name` is `search_tools` or `activate_tools`) with
   * the client's arguments; bad arguments are a tool error (`isError`), as MCP
   * reports a tool's own failures. Undefined for any other name.
   */
  callMeta(name: string, args: Record<string, unknown> | undefined): MetaCallOutcome | undefined {
    if (name === SEARCH_TOOLS) {
      const query = args?.query ?? '';
      const limit = args?.limit ?? DEFAULT_SEARCH_RESULTS;
      if (typeof query !== 'string') return toolError('query must be a string');
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_RESULTS) {
        return toolError(`limit must be an integer from 1 to ${MAX_SEARCH_RESULTS}`);
      }
      if (query.length > MAX_QUERY_LENGTH) return toolError(`query must be at most ${MAX_QUERY_LENGTH} characters`);
      const found = this.search(query, limit);
      const structured = { tools: found.tools.map((t) => ({ ...t, active: this.isActive(t.name) })), total: found.total };
      return { changed: false, result: { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured } };
    }
    if (name === ACTIVATE_TOOLS) {
      const names = args?.names;
      if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
        return toolError('names must be a non-empty array of tool names');
      }
      if (names.length > MAX_ACTIVATE_NAMES) return toolError(`at most ${MAX_ACTIVATE_NAMES} names per call`);
      const outcome = this.activate(names);
      const structured = { ...outcome };
      return {
        changed: outcome.added.length > 0,
        result: {
          content: [{ type: 'text', text: JSON.stringify(structured) }],
          structuredContent: structured,
          isError: outcome.unknown.length > 0 && outcome.added.length === 0 && outcome.alreadyActive.length === 0,
        },
      };
    }
    return undefined;
  }
}

function toolError(message: string): MetaCallOutcome {
  return { changed: false, result: { content: [{ type: 'text', text: message }], isError: true } };
}
