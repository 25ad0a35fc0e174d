import type { Effect } from './trust-rule.schemas.js';

/** The fields of a trust rule that decide a tool call. */
export interface TrustRuleLike {
  readonly agentId: string;
  readonly mcpServerId: string;
  readonly toolPattern: string;
  readonly effect: Effect;
  readonly priority: number;
}

/** On equal priority the stricter effect wins. */
const STRICTNESS: Record<Effect, number> = { allow: 0, require_approval: 1, deny: 2 };

/**
 * Whole-string glob match: `*` matches any run of characters (including none,
 * `.` and `/`); every other character matches itself, case-sensitively.
 * Greedy matching that backtracks only to the last `*`: O(pattern × text) at
 * worst, never exponential (no regex, no ReDoS).
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * The effect for `agentId` calling `toolName` on `serverId`: that of the
 * matching rule with the highest priority (ties: deny > require_approval >
 * allow), or `deny` when no rule matches (default-deny).
 */
export function evaluateTrust(rules: readonly TrustRuleLike[], agentId: string, serverId: string, toolName: string): Effect {
  let best: TrustRuleLike | undefined;
  for (const rule of rules) {
    if (rule.agentId !== agentId || rule.mcpServerId !== serverId || !globMatch(rule.toolPattern, toolName)) continue;
    if (best === undefined || rule.priority > best.priority || (rule.priority === best.priority && STRICTNESS[rule.effect] > STRICTNESS[best.effect])) {
      best = rule;
    }
  }
  return best?.effect ?? 'deny';
}
