import type { Effect } from './trust-rule.schemas.js';

/** The fields of a trust rule that decide a tool call. */
export interface TrustRuleLike {
  readonly agentId: string;
  readonly mcpServerId: string;
  readonly toolPattern: string;
  readonly effect: Effect;
  readonly priority: number;
}

/** On equal priority and specificity the stricter effect wins. */
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
 * How specific a pattern is: an exact name (no `*`) beats any glob; between
 * globs, the one with more literal characters (`github.delete_*` over
 * `github.*` over `*`).
 */
export function specificity(pattern: string): number {
  let literal = 0;
  for (let i = 0; i < pattern.length; i++) if (pattern[i] !== '*') literal++;
  return literal === pattern.length ? Number.MAX_SAFE_INTEGER : literal;
}

/**
 * The effect for `agentId` calling `toolName` on `serverId`, decided by the
 * matching rules in this order: the highest priority; on equal priority the
 * most specific pattern (see `specificity`); on equal specificity the stricter
 * effect (deny > require_approval > allow). No matching rule: `deny`
 * (default-deny).
 */
export function evaluateTrust(rules: readonly TrustRuleLike[], agentId: string, serverId: string, toolName: string): Effect {
  let best: TrustRuleLike | undefined;
  let bestSpecificity = -1;
  for (const rule of rules) {
    if (rule.agentId !== agentId || rule.mcpServerId !== serverId || !globMatch(rule.toolPattern, toolName)) continue;
    const ruleSpecificity = specificity(rule.toolPattern);
    if (
      best === undefined ||
      rule.priority > best.priority ||
      (rule.priority === best.priority &&
        (ruleSpecificity > bestSpecificity || (ruleSpecificity === bestSpecificity && STRICTNESS[rule.effect] > STRICTNESS[best.effect])))
    ) {
      best = rule;
      bestSpecificity = ruleSpecificity;
    }
  }
  return best?.effect ?? 'deny';
}
