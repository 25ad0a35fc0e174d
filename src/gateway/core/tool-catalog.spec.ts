import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { ACTIVATE_TOOLS, DeferredToolCatalog, MAX_ACTIVATE_NAMES, MAX_SEARCH_RESULTS, SEARCH_TOOLS, words } from './tool-catalog.js';

const tool = (name: string, description = ''): Tool => ({ name, description, inputSchema: { type: 'object' } });

function catalog(activated: string[] = []): DeferredToolCatalog {
  return new DeferredToolCatalog(
    [
      tool('github__create_issue', 'Create a new issue in a repository'),
      tool('github__list_issues', 'List issues of a repository'),
      tool('github__get_file', 'Read a file from a repository'),
      tool('jira__create_ticket', 'Open a Jira ticket (an issue tracker entry)'),
      tool('everything__echo', 'Echoes back the input'),
    ],
    activated,
  );
}

describe('DeferredToolCatalog', () => {
  it('exposes only the two meta tools until something is activated', () => {
    expect(
      catalog()
        .exposed()
        .map((t) => t.name),
    ).toEqual([SEARCH_TOOLS, ACTIVATE_TOOLS]);
  });

  it('splits namespaced, snake and camel case names into words', () => {
    expect(words('github__createIssue_now')).toEqual(['github', 'create', 'issue', 'now']);
  });

  it('finds tools by name words before description words, and bounds the list', () => {
    const found = catalog().search('issue');
    expect(found.tools.map((t) => t.name)).toEqual(['github__create_issue', 'github__list_issues', 'jira__create_ticket']);
    expect(found.total).toBe(3);
    expect(catalog().search('issue', 1)).toEqual({ total: 3, tools: [{ name: 'github__create_issue', description: 'Create a new issue in a repository' }] });
  });

  it('ranks a tool matching more of the words first, and an exact name first of all', () => {
    expect(catalog().search('create jira').tools[0].name).toBe('jira__create_ticket');
    expect(
      catalog()
        .search('echo')
        .tools.map((t) => t.name),
    ).toEqual(['everything__echo']);
    expect(catalog().search('get_file').tools[0].name).toBe('github__get_file');
  });

  it('lists tools by name for an empty query and finds nothing for unknown words', () => {
    expect(
      catalog()
        .search('')
        .tools.map((t) => t.name),
    ).toEqual(['everything__echo', 'github__create_issue', 'github__get_file', 'github__list_issues', 'jira__create_ticket']);
    expect(catalog().search('kubernetes')).toEqual({ tools: [], total: 0 });
  });

  it('activation adds known tools once, in order, and reports unknown ones', () => {
    const c = catalog();
    expect(c.activate(['github__list_issues', 'nope__x', 'github__list_issues'])).toEqual({
      added: ['github__list_issues'],
      alreadyActive: [],
      unknown: ['nope__x'],
    });
    expect(c.activate(['github__list_issues', 'everything__echo'])).toEqual({
      added: ['everything__echo'],
      alreadyActive: ['github__list_issues'],
      unknown: [],
    });
    expect(c.exposed().map((t) => t.name)).toEqual([SEARCH_TOOLS, ACTIVATE_TOOLS, 'github__list_issues', 'everything__echo']);
    expect(c.activated()).toEqual(['github__list_issues', 'everything__echo']);
  });

  it('meta tool names can never be activated or shadowed by a backend tool', () => {
    const c = new DeferredToolCatalog([tool(SEARCH_TOOLS, 'an impostor'), tool('a__b')], [ACTIVATE_TOOLS]);
    expect(c.activate([SEARCH_TOOLS]).unknown).toEqual([SEARCH_TOOLS]);
    expect(c.exposed().filter((t) => t.name === SEARCH_TOOLS)).toHaveLength(1);
    expect(c.exposed().find((t) => t.name === SEARCH_TOOLS)!.description).not.toBe('an impostor');
    expect(c.activated()).toEqual([]);
  });

  it('keeps activations across a new tool list, exposing only the tools still there', () => {
    const c = catalog(['github__get_file', 'everything__echo']);
    c.replaceTools([tool('everything__echo', 'Echoes')]);
    expect(c.exposed().map((t) => t.name)).toEqual([SEARCH_TOOLS, ACTIVATE_TOOLS, 'everything__echo']);
    c.replaceTools([tool('everything__echo'), tool('github__get_file')]);
    expect(c.exposed().map((t) => t.name)).toEqual([SEARCH_TOOLS, ACTIVATE_TOOLS, 'github__get_file', 'everything__echo']);
  });

  it('answers meta tool calls, with bad arguments as tool errors', () => {
    const c = catalog();
    const search = c.callMeta(SEARCH_TOOLS, { query: 'echo' })!;
    expect(search.changed).toBe(false);
    expect(search.result.structuredContent).toEqual({ total: 1, tools: [{ name: 'everything__echo', description: 'Echoes back the input', active: false }] });
    expect(c.callMeta(SEARCH_TOOLS, { query: 42 })!.result.isError).toBe(true);
    expect(c.callMeta(SEARCH_TOOLS, { limit: MAX_SEARCH_RESULTS + 1 })!.result.isError).toBe(true);
    expect(c.callMeta(SEARCH_TOOLS, { query: 'x'.repeat(501) })!.result.isError).toBe(true);

    const activate = c.callMeta(ACTIVATE_TOOLS, { names: ['everything__echo'] })!;
    expect(activate.changed).toBe(true);
    expect(activate.result.structuredContent).toEqual({ added: ['everything__echo'], alreadyActive: [], unknown: [] });
    expect(c.callMeta(ACTIVATE_TOOLS, { names: ['everything__echo'] })!.changed).toBe(false);
    expect(c.callMeta(SEARCH_TOOLS, { query: 'echo' })!.result.structuredContent).toMatchObject({ tools: [{ active: true }] });
    expect(c.callMeta(ACTIVATE_TOOLS, { names: ['nope__x'] })!.result.isError).toBe(true);
    expect(c.callMeta(ACTIVATE_TOOLS, { names: [] })!.result.isError).toBe(true);
    expect(c.callMeta(ACTIVATE_TOOLS, { names: [1] })!.result.isError).toBe(true);
    expect(c.callMeta(ACTIVATE_TOOLS, { names: Array.from({ length: MAX_ACTIVATE_NAMES + 1 }, (_, i) => `a__${i}`) })!.result.isError).toBe(true);
    expect(c.callMeta('github__get_file', {})).toBeUndefined();
  });

  it('searches a catalog of a thousand tools', () => {
    const many = Array.from({ length: 1000 }, (_, i) => tool(`srv${i % 10}__tool_${i}`, i === 777 ? 'Rotate the signing keys' : `Does thing ${i}`));
    const c = new DeferredToolCatalog(many);
    expect(c.search('signing').tools.map((t) => t.name)).toEqual(['srv7__tool_777']);
    expect(c.search('thing').tools).toHaveLength(20);
    expect(c.search('thing').total).toBe(999);
  });
});
