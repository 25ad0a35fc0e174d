import { DomainError } from './domain-error.js';
import { exceedsJsonDepth, findNul, guardedJsonParser, MAX_JSON_DEPTH } from './json-body.js';

describe('JSON body guards', () => {
  it('measures nesting without recursion, ignoring brackets inside strings', () => {
    expect(exceedsJsonDepth('{"a":[1,{"b":2}]}', 3)).toBe(false);
    expect(exceedsJsonDepth('{"a":[1,{"b":[2]}]}', 3)).toBe(true);
    expect(exceedsJsonDepth('{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 2)).toBe(false);
    expect(exceedsJsonDepth('{"a":"\\"[[[[["}', 1)).toBe(false);
    expect(exceedsJsonDepth('['.repeat(5000) + ']'.repeat(5000))).toBe(true);
    // Far beyond any stack: still one linear scan.
    expect(exceedsJsonDepth('['.repeat(2_000_000))).toBe(true);
    expect(exceedsJsonDepth('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH))).toBe(false);
  });

  it('names the first field holding a NUL, keys included', () => {
    expect(findNul({ a: 'ok', model: { name: 'x\0y' } })).toBe('model.name');
    expect(findNul({ tags: ['a', 'b\0'] })).toBe('tags.1');
    expect(findNul({ metadata: { 'k\0': 1 } })).toBe('metadata.k\\u0000');
    expect(findNul('\0')).toBe('(body)');
    expect(findNul({ tag: ['x', '\0'] }, 'query')).toBe('query.tag.1');
    expect(findNul({ a: [1, null, true, { b: 'fine' }] })).toBeUndefined();
  });

  it('parses through the base parser: empty body is no body, deep and NUL bodies are 400s', async () => {
    const base = (_r: unknown, body: string, done: (e: Error | null, v?: unknown) => void) => {
      try {
        done(null, JSON.parse(body));
      } catch (e) {
        done(e as Error);
      }
    };
    const parse = (body: string) => new Promise<unknown>((resolve, reject) => guardedJsonParser(base)(undefined, body, (e, v) => (e ? reject(e) : resolve(v))));
    await expect(parse('')).resolves.toBeUndefined();
    await expect(parse('{"a":1}')).resolves.toEqual({ a: 1 });
    const deep = await parse('['.repeat(5000) + ']'.repeat(5000)).catch((e: unknown) => e);
    expect(deep).toBeInstanceOf(DomainError);
    expect((deep as DomainError).errors[0].field).toBe('(body)');
    const nul = await parse('{"name":"a\\u0000b"}').catch((e: unknown) => e);
    expect((nul as DomainError).status).toBe(400);
    expect((nul as DomainError).errors[0].field).toBe('name');
    await expect(parse('{bad')).rejects.toBeInstanceOf(SyntaxError);
  });
});
