import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { AuthGuard } from '../../src/auth/auth.guard.js';
import { AgentController } from '../../src/registry/agents/agent.controller.js';
import { OpsController } from '../../src/ops/ops.controller.js';
import { api, startTestApp, type TestApp } from '../support/test-env.js';

describe('security: the global guard fails closed', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  const context = (type: string, controller: object, handler: (...args: never[]) => unknown) => {
    const ctx = new ExecutionContextHost([{ handshake: { headers: { authorization: `Bearer ${t.adminKey}` } } }, {}], controller as never, handler);
    ctx.setType(type);
    return ctx;
  };

  it('denies a WebSocket or RPC call even with valid credentials and on a public handler', async () => {
    const guard = t.app.get(AuthGuard);
    for (const type of ['ws', 'rpc', 'graphql']) {
      // The handler functions themselves are the metadata keys (as Nest passes them): not called here.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      await expect(guard.canActivate(context(type, AgentController, AgentController.prototype.list))).resolves.toBe(false);
      // eslint-disable-next-line @typescript-eslint/unbound-method
      await expect(guard.canActivate(context(type, OpsController, OpsController.prototype.healthz))).resolves.toBe(false);
    }
  });

  it('still serves HTTP as before: 401 without credentials, 200 with them, public routes open', async () => {
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents')).status).toBe(401);
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents', { key: t.adminKey })).status).toBe(200);
    expect((await api(t.baseUrl, 'GET', '/healthz')).status).toBe(200);
  });
});
