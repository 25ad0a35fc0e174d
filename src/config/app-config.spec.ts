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
});
