import { InitialSchema1763700000000 } from './migrations/1763700000000-initial-schema.js';

/** Every migration, oldest first. Explicit SQL; the schema is never synchronized. */
export const MIGRATIONS = [InitialSchema1763700000000];
