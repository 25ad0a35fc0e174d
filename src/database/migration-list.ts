import { InitialSchema1763700000000 } from './migrations/1763700000000-initial-schema.js';
import { PromptVersionCounter1763800000000 } from './migrations/1763800000000-prompt-version-counter.js';
import { Security1764000000000 } from './migrations/1764000000000-security.js';
import { SequencerLease1764100000000 } from './migrations/1764100000000-sequencer-lease.js';
import { McpServerHealth1764200000000 } from './migrations/1764200000000-mcp-server-health.js';
import { Notices1764300000000 } from './migrations/1764300000000-notices.js';
import { RegistryCounts1764400000000 } from './migrations/1764400000000-registry-counts.js';
import { ApiKeyAgent1764500000000 } from './migrations/1764500000000-api-key-agent.js';

/** Every migration, oldest first. Explicit SQL; the schema is never synchronized. */
export const MIGRATIONS = [
  InitialSchema1763700000000,
  PromptVersionCounter1763800000000,
  Security1764000000000,
  SequencerLease1764100000000,
  McpServerHealth1764200000000,
  Notices1764300000000,
  RegistryCounts1764400000000,
  ApiKeyAgent1764500000000,
];
