import { DomainError } from './domain-error.js';

/** Deepest nesting of objects and arrays a request body may have. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether `text` nests objects/arrays deeper than `max`, by one linear scan
 * (no recursion, so 5,000 or 5,000,000 levels cost the same small stack).
 * Brackets inside strings do not count. Runs before `JSON.parse`, so a deep
 * body never reaches the recursive code after it (validation, serialization).
 */
export function exceedsJsonDepth(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/**
 * The dotted path (`model.name`, `tags.2`) of the first string — key or
 * value — that contains a NUL character, which PostgreSQL cannot store in
 * text. Iterative, like the depth check.
 */
export function findNul(value: unknown, root = ''): string | undefined {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\0')) return path || '(body)';
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], join(path, String(i))]);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        const childPath = join(path, key.replace(/\0/g, '\\u0000'));
        if (key.includes('\0')) return childPath;
        stack.push([child, childPath]);
      }
    }
  }
  return undefined;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

export function nulError(field: string): DomainError {
  return DomainError.field(field, 'must not contain NUL (\\u0000) characters');
}

type Done = (error: Error | null, value?: unknown) => void;
type BaseParser = (request: unknown, body: string, done: Done) => void;

/**
 * Wraps Fastify's JSON parser (which keeps its prototype-poisoning checks):
 * an empty body is no body (clients send `Content-Type: application/json`
 * with bodyless actions such as `POST …/activate`), a body nested deeper
 * than MAX_JSON_DEPTH is refused before parsing, and a NUL anywhere is a 400
 * naming the field instead of a database error.
 */
export function guardedJsonParser(base: BaseParser): BaseParser {
  return (request, body, done) => {
    if (body.length === 0) {
      done(null, undefined);
      return;
    }
    if (exceedsJsonDepth(body)) {
      done(DomainError.field('(body)', `must not nest objects or arrays deeper than ${MAX_JSON_DEPTH} levels`));
      return;
    }
    base(request, body, (error, value) => {
      if (error) return done(error);
      const field = findNul(value);
      if (field !== undefined) return done(nulError(field));
      done(null, value);
    });
  };
}
