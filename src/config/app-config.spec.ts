import { ConfigError, loadConfig } from './app-config.js';

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.stream.keepAliveMs).toBe(30_000);
    expect(config.limits.connectionsPerUser).toBe(100);
  });

  it('reads values', () => {
    const config = loadConfig({ PORT: '8080', REDIS_URL: 'redis://127.0.0.1:6380', SSE_KEEPALIVE_MS: '500' });
    expect(config.port).toBe(8080);
    expect(config.redisUrl).toBe('redis://127.0.0.1:6380');
    expect(config.stream.keepAliveMs).toBe(500);
  });

  it.each([
    ['PORT', 'abc', /PORT must be an integer/],
    ['PORT', '70000', /PORT must be between/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must use postgres/],
    ['REDIS_URL', 'not a url', /REDIS_URL must be a URL/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL must be one of/],
    ['SESSION_COOKIE_SECURE', 'maybe', /SESSION_COOKIE_SECURE must be true or false/],
    ['BOOTSTRAP_ADMIN_KEY', 'short', /BOOTSTRAP_ADMIN_KEY must be at least/],
    ['BOOTSTRAP_ADMIN_KEY', 'no-prefix-but-long-enough-secret', /BOOTSTRAP_ADMIN_KEY must start with "ar_"/],
    ['MCP_CALL_MAX_TOTAL_MS', '10m', /MCP_CALL_MAX_TOTAL_MS must be an integer/],
    ['MCP_CALL_MAX_TOTAL_MS', '50', /MCP_CALL_MAX_TOTAL_MS must be between 100 and 86400000, got 50/],
    ['MCP_CALL_MAX_TOTAL_MS', '30000', /MCP_CALL_MAX_TOTAL_MS must be at least GATEWAY_MCP_CALL_TIMEOUT_MS \(60000\), got 30000/],
  ])('rejects %s=%s naming the variable', (name, value, message) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(name);
    expect((error as Error).message).toMatch(message);
  });

  it('caps a call that reports progress at MCP_CALL_MAX_TOTAL_MS, at least either per-call timeout', () => {
    expect(loadConfig({}).security.mcpCallMaxTotalMs).toBe(600_000);
    expect(
      loadConfig({ MCP_CALL_MAX_TOTAL_MS: '1500', GATEWAY_MCP_CALL_TIMEOUT_MS: '1000', GATEWAY_REQUEST_TIMEOUT_MS: '1500' }).security.mcpCallMaxTotalMs,
    ).toBe(1500);
    // Unset, it is never below either timeout (a deployment with long timeouts still starts).
    expect(loadConfig({ GATEWAY_REQUEST_TIMEOUT_MS: '3600000' }).security.mcpCallMaxTotalMs).toBe(3_600_000);
    expect(() => loadConfig({ MCP_CALL_MAX_TOTAL_MS: '100000', GATEWAY_REQUEST_TIMEOUT_MS: '120000' })).toThrow(
      'Invalid configuration: MCP_CALL_MAX_TOTAL_MS must be at least GATEWAY_REQUEST_TIMEOUT_MS (120000), got 100000',
    );
  });
});
