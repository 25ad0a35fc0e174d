import { type PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { DomainError, type FieldError } from './domain-error.js';

/** Maps zod issues to named field errors; unknown keys are reported one field each. */
export function fieldErrors(error: z.ZodError, root = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const base = [root, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ field: base ? `${base}.${key}` : key, message: 'unknown field' });
    } else {
      out.push({ field: base || '(body)', message: issue.message });
    }
  }
  return out;
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, root = ''): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw DomainError.validation(fieldErrors(result.error, root));
  return result.data;
}

/** `@Body(new ZodPipe(schema))`: validates and returns the typed value, or a 400 naming each field. */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(
    private readonly schema: S,
    private readonly root = '',
  ) {}

  transform(value: unknown): z.infer<S> {
    if (this.root === '' && (value === undefined || value === null)) {
      throw DomainError.field('(body)', 'a JSON object body is required');
    }
    return parseWith(this.schema, value, this.root);
  }
}
