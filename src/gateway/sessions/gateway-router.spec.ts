import { GatewayError } from '../core/gateway-errors.js';
import { route } from './gateway-router.js';

const refusal = (fn: () => unknown): { code: string; rpc: number; message: string } => {
  try {
    fn();
  } catch (error) {
    const e = error as GatewayError;
    return { code: e.code, rpc: e.toJsonRpc().code, message: e.message };
  }
  throw new Error('expected a refusal');
};

describe('gateway session routing', () => {
  const two = ['github', 'jira'];

  it('broadcasts the list methods to every server of the session', () => {
    expect(route(two, 'tools/list', undefined)).toEqual({ kind: 'broadcast', method: 'tools/list', servers: two });
    expect(route(two, 'prompts/list', {})).toEqual({ kind: 'broadcast', method: 'prompts/list', servers: two });
    expect(route(two, 'ping', undefined)).toEqual({ kind: 'local', method: 'ping' });
  });

  it('routes tools/call and prompts/get by their namespaced name, passing the name the server knows', () => {
    expect(route(two, 'tools/call', { name: 'jira__create_issue', arguments: { a: 1 } })).toEqual({
      kind: 'server',
      serverId: 'jira',
      method: 'tools/call',
      params: { name: 'create_issue', arguments: { a: 1 } },
      tool: 'create_issue',
    });
    expect(route(two, 'prompts/get', { name: 'github__review' })).toEqual(
      expect.objectContaining({ serverId: 'github', params: { name: 'review' }, tool: null }),
    );
  });

  it('routes server__method to that server with the method as it knows it', () => {
    expect(route(two, 'github__resources/read', { uri: 'repo://x' })).toEqual({
      kind: 'server',
      serverId: 'github',
      method: 'resources/read',
      params: { uri: 'repo://x' },
      tool: null,
    });
  });

  it('sends an unprefixed method to the only server of a one-server session', () => {
    expect(route(['github'], 'tools/call', { name: 'search' })).toEqual(expect.objectContaining({ serverId: 'github', tool: 'search' }));
    expect(route(['github'], 'resources/read', { uri: 'x' })).toEqual(expect.objectContaining({ serverId: 'github', method: 'resources/read' }));
  });

  it('refuses unknown servers, servers outside the session, ambiguity and a missing name clearly', () => {
    expect(refusal(() => route(two, 'tools/call', { name: 'slack__post' }))).toEqual({
      code: 'not_found',
      rpc: -32004,
      message: expect.stringContaining('slack'),
    });
    expect(refusal(() => route(two, 'slack__tools/list', undefined)).code).toBe('not_found');
    expect(refusal(() => route(two, 'resources/read', { uri: 'x' }))).toEqual({
      code: 'invalid_request',
      rpc: -32600,
      message: expect.stringContaining('ambiguous'),
    });
    expect(refusal(() => route(two, 'tools/call', { name: 'search' })).code).toBe('invalid_request');
    expect(refusal(() => route(two, 'tools/call', {})).rpc).toBe(-32602);
    expect(refusal(() => route(two, 'tools/call', { name: 42 })).rpc).toBe(-32602);
  });
});
