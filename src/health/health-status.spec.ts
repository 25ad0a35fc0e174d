import { applyCheck, type StatusTracker } from './health-status.js';

const settings = { unhealthyThreshold: 3, healthyThreshold: 2 };
const fresh = (): StatusTracker => ({ status: 'unknown', reason: null, failures: 0, successes: 0 });

describe('health status', () => {
  it('takes the first verdict at once from unknown', () => {
    const a = fresh();
    expect(applyCheck(a, 'good', '', settings)).toEqual({ from: 'unknown', to: 'healthy', reason: expect.any(String) });
    const b = fresh();
    expect(applyCheck(b, 'slow', 'took 3000 ms', settings)).toEqual({ from: 'unknown', to: 'degraded', reason: 'took 3000 ms' });
    const c = fresh();
    expect(applyCheck(c, 'failed', 'refused', settings)?.to).toBe('degraded');
  });

  it('degrades on partial failures and turns unhealthy at the threshold', () => {
    const t = fresh();
    applyCheck(t, 'good', '', settings);
    expect(applyCheck(t, 'failed', 'HTTP 500', settings)).toMatchObject({ from: 'healthy', to: 'degraded' });
    expect(applyCheck(t, 'failed', 'HTTP 500', settings)).toBeUndefined();
    expect(applyCheck(t, 'failed', 'HTTP 500', settings)).toEqual({ from: 'degraded', to: 'unhealthy', reason: '3 failed checks in a row: HTTP 500' });
    expect(applyCheck(t, 'failed', 'HTTP 500', settings)).toBeUndefined();
    expect(t.status).toBe('unhealthy');
  });

  it('needs healthyThreshold answers in a row to get better, gets worse at once', () => {
    const t: StatusTracker = { status: 'unhealthy', reason: 'down', failures: 3, successes: 0 };
    expect(applyCheck(t, 'good', '', settings)).toBeUndefined();
    expect(t.reason).toBe('down');
    expect(applyCheck(t, 'good', '', settings)).toMatchObject({ from: 'unhealthy', to: 'healthy' });
    expect(applyCheck(t, 'slow', 'slow', settings)).toMatchObject({ from: 'healthy', to: 'degraded' });
    // Slow answers are answers: the next fast one makes it healthy again.
    expect(applyCheck(t, 'good', '', settings)).toMatchObject({ from: 'degraded', to: 'healthy' });
    // After failures, it takes healthyThreshold answers.
    applyCheck(t, 'failed', 'x', settings);
    expect(applyCheck(t, 'good', '', settings)).toBeUndefined();
    expect(applyCheck(t, 'good', '', settings)).toMatchObject({ from: 'degraded', to: 'healthy' });
  });

  it('counts a slow or partial answer as an answer (resets the failures)', () => {
    const t = fresh();
    applyCheck(t, 'failed', 'x', settings);
    applyCheck(t, 'failed', 'x', settings);
    applyCheck(t, 'partial', 'tools/list failed', settings);
    expect(t.failures).toBe(0);
    applyCheck(t, 'failed', 'x', settings);
    expect(t.status).toBe('degraded');
  });
});
