import { DomainError } from '../common/domain-error.js';
import { EventFilter } from './event-filter.js';

describe('EventFilter', () => {
  it('defaults to everything the role may read', () => {
    const admin = EventFilter.parse(undefined, 'admin');
    expect(admin.all).toBe(true);
    expect(admin.matches('trust_rule.created')).toBe(true);
    const viewer = EventFilter.parse('', 'viewer');
    expect(viewer.all).toBe(false);
    expect(viewer.matches('agent.created')).toBe(true);
    expect(viewer.matches('trust_rule.created')).toBe(false);
  });

  it('takes exact names and resource wildcards', () => {
    const f = EventFilter.parse('agent.updated, prompt.*', 'admin');
    expect(f.matches('agent.updated')).toBe(true);
    expect(f.matches('agent.created')).toBe(false);
    expect(f.matches('prompt.activated')).toBe(true);
    expect(f.key).toBe('agent.updated,prompt.activated,prompt.created,prompt.deleted');
  });

  it('gives equal filters equal keys whatever the order', () => {
    expect(EventFilter.parse('prompt.*,agent.updated', 'editor').key).toBe(EventFilter.parse('agent.updated,prompt.*', 'editor').key);
  });

  it.each(['agent.exploded', 'robot.*', 'agent', 'agent.created,nope'])('rejects %s naming the field', (spec) => {
    let error: unknown;
    try {
      EventFilter.parse(spec, 'admin');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).errors[0].field).toBe('events');
  });
});
