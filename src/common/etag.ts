import { DomainError } from './domain-error.js';

export function etagFor(version: number): string {
  return `"${version}"`;
}

/**
 * Reads the expected version from `If-Match` (`"3"`, `W/"3"` or `3`) and/or a
 * body `version`. Returns undefined when neither is given (unconditional write).
 */
export function expectedVersion(ifMatch: string | undefined, bodyVersion?: number): number | undefined {
  let header: number | undefined;
  if (ifMatch !== undefined && ifMatch.trim() !== '' && ifMatch.trim() !== '*') {
    const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(ifMatch.trim());
    if (!m) throw DomainError.field('If-Match', 'must be an ETag such as "3"');
    header = Number(m[1]);
  }
  if (header !== undefined && bodyVersion !== undefined && header !== bodyVersion) {
    throw DomainError.field('version', 'disagrees with If-Match');
  }
  return header ?? bodyVersion;
}
