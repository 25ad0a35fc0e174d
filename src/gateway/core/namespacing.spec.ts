import { isBroadcastMethod, namespaced, parseNamespaced } from './namespacing.js';

describe('gateway namespacing', () => {
  it('round-trips a server id and a name, splitting on the first "__"', () => {
    expect(namespaced('github', 'create_issue')).toBe('github__create_issue');
    expect(parseNamespaced('github__create_issue')).toEqual({ serverId: 'github', name: 'create_issue' });
    expect(parseNamespaced('my-srv__a__b')).toEqual({ serverId: 'my-srv', name: 'a__b' });
    expect(parseNamespaced(namespaced('s1', '__x'))).toEqual({ serverId: 's1', name: '__x' });
  });

  it('refuses names without a server id or without a name', () => {
    for (const bad of ['echo', '__echo', 'srv__', 'Srv__echo', 'a_b__echo', '-a__echo', '']) expect(parseNamespaced(bad)).toBeNull();
  });

  it('knows the broadcast methods', () => {
    expect(isBroadcastMethod('tools/list')).toBe(true);
    expect(isBroadcastMethod('prompts/list')).toBe(true);
    expect(isBroadcastMethod('tools/call')).toBe(false);
  });
});
