import { evaluateTrust, globMatch, type TrustRuleLike } from './trust-evaluator.js';

const rule = (toolPattern: string, effect: TrustRuleLike['effect'], priority = 0, agentId = 'pmo', mcpServerId = 'github'): TrustRuleLike => ({
  agentId,
  mcpServerId,
  toolPattern,
  effect,
  priority,
});

describe('globMatch', () => {
  it.each([
    ['*', 'anything.at/all', true],
    ['*', '', true],
    ['github.*', 'github.create_issue', true],
    ['github.*', 'github.', true],
    ['github.*', 'github', false],
    ['github.*', 'gitlab.create_issue', false],
    ['github.*', 'xgithub.create', false],
    ['*_issue', 'github.create_issue', true],
    ['*_issue', 'github.create_issues', false],
    ['repo/*/read', 'repo/a/b/read', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['get.file', 'get.file', true],
    ['get.file', 'getXfile', false],
    ['Read', 'read', false],
    ['**', 'x', true],
  ])('%s ~ %s -> %s', (pattern, text, expected) => {
    expect(globMatch(pattern, text)).toBe(expected);
  });

  it('is fast on pathological patterns', () => {
    const started = Date.now();
    expect(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('evaluateTrust', () => {
  it('denies when no rule matches (default-deny)', () => {
    expect(evaluateTrust([], 'pmo', 'github', 'github.read')).toBe('deny');
    expect(evaluateTrust([rule('github.*', 'allow')], 'pmo', 'github', 'slack.post')).toBe('deny');
  });

  it('only considers rules of the agent and server', () => {
    const rules = [rule('*', 'allow', 0, 'other'), rule('*', 'allow', 0, 'pmo', 'slack')];
    expect(evaluateTrust(rules, 'pmo', 'github', 'read')).toBe('deny');
    expect(evaluateTrust(rules, 'other', 'github', 'read')).toBe('allow');
    expect(evaluateTrust(rules, 'pmo', 'slack', 'read')).toBe('allow');
  });

  it('takes the highest-priority matching rule', () => {
    const rules = [rule('*', 'deny', 0), rule('github.*', 'allow', 10), rule('github.delete_*', 'require_approval', 20)];
    expect(evaluateTrust(rules, 'pmo', 'github', 'github.read')).toBe('allow');
    expect(evaluateTrust(rules, 'pmo', 'github', 'github.delete_repo')).toBe('require_approval');
    expect(evaluateTrust(rules, 'pmo', 'github', 'other')).toBe('deny');
    expect(evaluateTrust([rule('*', 'allow', -5)], 'pmo', 'github', 'x')).toBe('allow');
  });

  it('breaks priority ties by the most specific pattern, whatever the order', () => {
    const tie = [rule('*', 'deny', 5), rule('github.*', 'allow', 5), rule('github.delete_*', 'require_approval', 5), rule('github.delete_repo', 'deny', 5)];
    for (const rules of [tie, [...tie].reverse(), [tie[2], tie[0], tie[3], tie[1]]]) {
      expect(evaluateTrust(rules, 'pmo', 'github', 'github.read')).toBe('allow');
      expect(evaluateTrust(rules, 'pmo', 'github', 'github.delete_issue')).toBe('require_approval');
      expect(evaluateTrust(rules, 'pmo', 'github', 'github.delete_repo')).toBe('deny');
      expect(evaluateTrust(rules, 'pmo', 'github', 'slack.post')).toBe('deny');
    }
    // Priority still comes first: a broad higher-priority deny beats a specific allow.
    expect(evaluateTrust([rule('github.read', 'allow', 0), rule('*', 'deny', 1)], 'pmo', 'github', 'github.read')).toBe('deny');
    // An exact name is more specific than any glob, however long.
    expect(evaluateTrust([rule('a.very_long_prefix_*', 'deny'), rule('a.very_long_prefix_x', 'allow')], 'pmo', 'github', 'a.very_long_prefix_x')).toBe('allow');
  });

  it('breaks ties of priority and specificity deny > require_approval > allow, whatever the order', () => {
    const tie = [rule('*.read', 'allow', 5), rule('git*read', 'require_approval', 5), rule('github.*', 'deny', 5)];
    // github.* and git*read both have 7 literal characters; *.read has 5.
    for (const rules of [tie, [...tie].reverse(), [tie[1], tie[2], tie[0]]]) {
      expect(evaluateTrust(rules, 'pmo', 'github', 'github.read')).toBe('deny');
      expect(evaluateTrust(rules, 'pmo', 'github', 'gitlab.read')).toBe('require_approval');
      expect(evaluateTrust(rules, 'pmo', 'github', 'slack.read')).toBe('allow');
    }
  });
});
