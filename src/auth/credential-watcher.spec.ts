import type { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';
import { CredentialWatcher } from './credential-watcher.js';
import type { Principal } from './principal.js';
import type { Role } from './roles.js';
import type { UserRepository } from './user.repository.js';

/** The watcher's check against a database whose answer the test releases (the query's timing is what matters here). */
function watcher() {
  const answers: ((valid: Map<string, Role>) => void)[] = [];
  const users = { validCredentials: () => new Promise<Map<string, Role>>((resolve) => answers.push(resolve)) } as unknown as UserRepository;
  const w = new CredentialWatcher({ manager: {} } as DataSource, users, {} as AppConfig, new MetricsService(), undefined as never, undefined as never);
  return { w, answer: (valid: Record<string, Role>) => answers.shift()!(new Map(Object.entries(valid))) };
}

const principal = (credential: string, role: Role) => ({ kind: 'api_key', id: credential, name: credential, role, credential, via: 'api_key' }) as Principal;

describe('CredentialWatcher.check', () => {
  it('closes the holders of a credential the database no longer knows, and only those', async () => {
    const { w, answer } = watcher();
    const closed: string[] = [];
    w.track(principal('key:a', 'viewer'), { close: (reason) => closed.push(`a ${reason}`) });
    w.track(principal('key:b', 'viewer'), { close: (reason) => closed.push(`b ${reason}`) });
    const checking = w.check();
    answer({ 'key:a': 'viewer' });
    expect(await checking).toBe(1);
    expect(closed).toEqual([expect.stringMatching(/^b /)]);
  });

  it('does not judge a credential first tracked while the query ran: the next check does', async () => {
    const { w, answer } = watcher();
    const closed: string[] = [];
    w.track(principal('key:a', 'viewer'), { close: (reason) => closed.push(`a ${reason}`) });
    const checking = w.check();
    // A new stream (or /mcp POST) of another key, authenticated a moment ago, while the query is out.
    w.track(principal('key:new', 'viewer'), { close: (reason) => closed.push(`new ${reason}`) });
    answer({ 'key:a': 'viewer' });
    expect(await checking).toBe(0);
    expect(closed).toEqual([]);
    // Asked about next time: a valid key stays, a revoked one is closed.
    const next = w.check();
    answer({ 'key:a': 'viewer', 'key:new': 'viewer' });
    expect(await next).toBe(0);
    const last = w.check();
    answer({ 'key:a': 'viewer' });
    expect(await last).toBe(1);
    expect(closed).toEqual([expect.stringMatching(/^new /)]);
  });
});
