import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { normalizeOrigin } from '../common/origin-policy.js';

/**
 * The one typed configuration of the service. It is read from the environment
 * once at start-up by `loadConfig`, which fails fast naming the variable that
 * is wrong. Every variable is documented in README.md with its default.
 */
export interface AppConfig {
  readonly port: number;
  readonly host: string;
  /** postgres:// URL; unset means an embedded PostgreSQL in `dataDir`. */
  readonly databaseUrl?: string;
  readonly databasePoolSize: number;
  readonly dataDir: string;
  /** redis:// URL; unset means the in-process event bus (one replica only). */
  readonly redisUrl?: string;
  /** Prefix of every Redis key and channel, so deployments can share a Redis. */
  readonly redisPrefix: string;
  readonly bootstrapAdminKey?: string;
  /** Key for encrypting MCP server header secrets; unset means one kept in the database. */
  readonly secretKey?: string;
  readonly bodyLimitBytes: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** `json` (one object per line, the default) or `text` (readable lines for a terminal). */
  readonly logFormat: 'json' | 'text';
  readonly replicaId: string;
  readonly shutdownGraceMs: number;
  /** Unready but still serving, before streams and the listener close (lets load balancers stop sending). */
  readonly shutdownDelayMs: number;
  readonly sequencer: { readonly pollMs: number; readonly batchSize: number; readonly leaseMs: number };
  readonly stream: {
    readonly keepAliveMs: number;
    readonly retryMs: number;
    readonly windowSize: number;
    readonly maxBufferBytes: number;
    readonly headPollMs: number;
    readonly replayPageSize: number;
  };
  readonly retention: { readonly maxAgeMs: number; readonly maxEvents: number; readonly intervalMs: number };
  readonly limits: { readonly connectionsPerUser: number; readonly connectionsTotal: number; readonly leaseMs: number };
  readonly session: { readonly ttlMs: number; readonly cookieSecure: boolean };
  /** `NODE_ENV=production`: SECRET_KEY is required, private MCP networks are off by default. */
  readonly production: boolean;
  /** Still accepted for decryption during a key rotation (`npm run rotate-secrets`). */
  readonly secretKeyPrevious?: string;
  readonly security: SecurityConfig;
  /** Registry size caps (bounded discovery snapshots); exceeded at create → 409. */
  readonly registryLimits: {
    readonly agents: number;
    readonly promptVersionsPerAgent: number;
    readonly mcpServers: number;
    readonly trustRules: number;
  };
  /** MCP server health probing (src/health); per-server settings are in each server's `healthCheck`. */
  readonly health: HealthConfig;
}

export interface HealthConfig {
  /** This replica probes MCP servers (false: it serves health reads and streams only). */
  readonly probes: boolean;
  /** Probe-ownership lease: a dead replica's servers are taken over about this long after it stopped renewing. */
  readonly ownerLeaseMs: number;
  /** Probes one replica runs at once. */
  readonly maxConcurrentProbes: number;
  /** Check results kept per server (GET …/health). */
  readonly samples: number;
  /** Full re-read of the MCP server list (the change stream is followed meanwhile). */
  readonly resyncMs: number;
  /** A health-stream client with more unsent bytes than this misses `health.check` frames (never queued). */
  readonly checkBufferBytes: number;
}

export interface SecurityConfig {
  /** Origins allowed for cookie-authenticated unsafe requests (and the Socket.IO handshake); unset = the service's own origin. */
  readonly allowedOrigins?: readonly string[];
  /** Fastify `trustProxy`: which peers' X-Forwarded-* headers are believed. */
  readonly trustProxy: boolean | string;
  /** How often each replica re-checks the credentials its open streams hold. */
  readonly credentialCheckMs: number;
  readonly login: {
    readonly maxFailuresPerUser: number;
    readonly maxFailuresPerIp: number;
    readonly backoffMs: number;
    readonly backoffMaxMs: number;
    readonly failureWindowMs: number;
  };
  /** Password hashes (scrypt, 128 MiB each) computed at once per replica; a bounded queue waits beyond. */
  readonly passwordHashConcurrency: number;
  /** MCP server URLs may point at private and loopback addresses. */
  readonly mcpAllowPrivateNetworks: boolean;
  readonly metricsToken?: string;
  readonly metricsPort?: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'must be a URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

function redisPrefix(env: Env): string {
  const value = str(env, 'REDIS_PREFIX') ?? 'ar';
  if (!/^[\w.-]{1,64}$/.test(value)) throw new ConfigError('REDIS_PREFIX', 'must be 1-64 letters, digits, "_", "." or "-"');
  return value;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** JSON lines by default; readable text in the embedded developer mode (no DATABASE_URL). */
function logFormat(env: Env): 'json' | 'text' {
  const value = (str(env, 'LOG_FORMAT') ?? (str(env, 'DATABASE_URL') === undefined ? 'text' : 'json')).toLowerCase();
  if (value !== 'json' && value !== 'text') throw new ConfigError('LOG_FORMAT', `must be json or text, got "${value}"`);
  return value;
}

/** `ALLOWED_ORIGINS`: comma-separated `scheme://host[:port]` origins (no path), normalized as browsers send them. */
function allowedOrigins(env: Env): string[] | undefined {
  const raw = str(env, 'ALLOWED_ORIGINS');
  if (raw === undefined) return undefined;
  const origins: string[] = [];
  for (const item of raw.split(',').map((o) => o.trim()).filter(Boolean)) {
    const origin = normalizeOrigin(item);
    if (origin === undefined) {
      throw new ConfigError('ALLOWED_ORIGINS', `must list origins such as https://admin.example.com (scheme and host, no path), got "${item}"`);
    }
    origins.push(origin);
  }
  if (origins.length === 0) throw new ConfigError('ALLOWED_ORIGINS', 'must list at least one origin');
  return origins;
}

function trustProxy(env: Env): boolean | string {
  const raw = str(env, 'TRUST_PROXY') ?? 'loopback,uniquelocal';
  const lower = raw.toLowerCase();
  if (['true', 'false'].includes(lower)) return lower === 'true';
  for (const item of raw.split(',').map((v) => v.trim())) {
    if (!/^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)$/.test(item)) {
      throw new ConfigError('TRUST_PROXY', `must be true, false, or a list of addresses, CIDR ranges, loopback, linklocal, uniquelocal; got "${item}"`);
    }
  }
  return raw;
}

function securityConfig(env: Env, production: boolean, embedded: boolean): SecurityConfig {
  const metricsToken = str(env, 'METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters long');
  const metricsPort = str(env, 'METRICS_PORT') === undefined ? undefined : int(env, 'METRICS_PORT', 0, 1, 65535);
  if (metricsPort !== undefined && metricsPort === int(env, 'PORT', 3000, 0, 65535)) {
    throw new ConfigError('METRICS_PORT', 'must differ from PORT');
  }
  const login = {
    maxFailuresPerUser: int(env, 'LOGIN_MAX_FAILURES', 5, 1, 1000),
    maxFailuresPerIp: int(env, 'LOGIN_MAX_FAILURES_PER_IP', 20, 1, 100_000),
    backoffMs: int(env, 'LOGIN_BACKOFF_MS', 1000, 100, 3_600_000),
    backoffMaxMs: int(env, 'LOGIN_BACKOFF_MAX_MS', 15 * 60_000, 100, 86_400_000),
    failureWindowMs: int(env, 'LOGIN_FAILURE_WINDOW_MS', 15 * 60_000, 1000, 86_400_000),
  };
  if (login.backoffMaxMs < login.backoffMs) throw new ConfigError('LOGIN_BACKOFF_MAX_MS', 'must be at least LOGIN_BACKOFF_MS');
  return {
    allowedOrigins: allowedOrigins(env),
    trustProxy: trustProxy(env),
    credentialCheckMs: int(env, 'CREDENTIAL_CHECK_MS', 400, 50, 60_000),
    login,
    passwordHashConcurrency: int(env, 'PASSWORD_HASH_CONCURRENCY', 2, 1, 64),
    // Developer mode (embedded PostgreSQL) talks to local MCP servers; production does not by default.
    mcpAllowPrivateNetworks: bool(env, 'MCP_ALLOW_PRIVATE_NETWORKS', embedded && !production),
    metricsToken,
    metricsPort,
  };
}

export function loadConfig(env: Env = process.env): AppConfig {
  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const bootstrapAdminKey = str(env, 'BOOTSTRAP_ADMIN_KEY');
  if (bootstrapAdminKey !== undefined && bootstrapAdminKey.length < 24) {
    throw new ConfigError('BOOTSTRAP_ADMIN_KEY', 'must be at least 24 characters long');
  }
  if (bootstrapAdminKey !== undefined && !bootstrapAdminKey.startsWith('ar_')) {
    // API keys are recognised by their prefix.
    throw new ConfigError('BOOTSTRAP_ADMIN_KEY', 'must start with "ar_"');
  }
  const secretKey = str(env, 'SECRET_KEY');
  if (secretKey !== undefined && secretKey.length < 32) {
    throw new ConfigError('SECRET_KEY', 'must be at least 32 characters long');
  }
  const production = str(env, 'NODE_ENV') === 'production';
  if (production && secretKey === undefined) {
    throw new ConfigError('SECRET_KEY', 'must be set when NODE_ENV=production (32+ random characters; it encrypts MCP server secrets)');
  }
  const secretKeyPrevious = str(env, 'SECRET_KEY_PREVIOUS');
  if (secretKeyPrevious !== undefined && secretKeyPrevious.length < 32) {
    throw new ConfigError('SECRET_KEY_PREVIOUS', 'must be at least 32 characters long');
  }
  if (secretKeyPrevious !== undefined && secretKey === undefined) {
    throw new ConfigError('SECRET_KEY_PREVIOUS', 'needs SECRET_KEY (the new key) to be set too');
  }
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  return {
    port: int(env, 'PORT', 3000, 0, 65535),
    host: str(env, 'HOST') ?? '127.0.0.1',
    databaseUrl,
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 2, 200),
    dataDir: path.resolve(str(env, 'DATA_DIR') ?? '.data'),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisPrefix: redisPrefix(env),
    bootstrapAdminKey,
    secretKey,
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 256 * 1024, 1024, 64 * 1024 * 1024),
    logLevel: logLevel as AppConfig['logLevel'],
    logFormat: logFormat(env),
    replicaId: str(env, 'REPLICA_ID') ?? randomUUID(),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 25_000, 0, 600_000),
    shutdownDelayMs: int(env, 'SHUTDOWN_DELAY_MS', 0, 0, 300_000),
    sequencer: {
      pollMs: int(env, 'SEQUENCER_POLL_MS', 1000, 10, 60_000),
      batchSize: int(env, 'SEQUENCER_BATCH_SIZE', 1000, 1, 100_000),
      leaseMs: int(env, 'SEQUENCER_LEASE_MS', 1000, 200, 60_000),
    },
    stream: {
      keepAliveMs: int(env, 'SSE_KEEPALIVE_MS', 30_000, 100, 3_600_000),
      retryMs: int(env, 'SSE_RETRY_MS', 2000, 0, 600_000),
      windowSize: int(env, 'STREAM_WINDOW_SIZE', 10_000, 0, 10_000_000),
      maxBufferBytes: int(env, 'STREAM_MAX_BUFFER_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
      headPollMs: int(env, 'STREAM_HEAD_POLL_MS', 1000, 10, 60_000),
      replayPageSize: int(env, 'STREAM_REPLAY_PAGE_SIZE', 5000, 10, 100_000),
    },
    retention: {
      maxAgeMs: int(env, 'OUTBOX_RETENTION_MS', 7 * 24 * 3600 * 1000, 0, Number.MAX_SAFE_INTEGER),
      maxEvents: int(env, 'OUTBOX_RETENTION_EVENTS', 1_000_000, 0, Number.MAX_SAFE_INTEGER),
      intervalMs: int(env, 'OUTBOX_PRUNE_INTERVAL_MS', 60_000, 100, 86_400_000),
    },
    limits: {
      connectionsPerUser: int(env, 'MAX_CONNECTIONS_PER_USER', 100, 1, 10_000_000),
      connectionsTotal: int(env, 'MAX_CONNECTIONS_TOTAL', 50_000, 1, 100_000_000),
      leaseMs: int(env, 'CONNECTION_LEASE_MS', 30_000, 1000, 3_600_000),
    },
    session: {
      ttlMs: int(env, 'SESSION_TTL_MS', 12 * 3600 * 1000, 60_000, 365 * 24 * 3600 * 1000),
      cookieSecure: bool(env, 'SESSION_COOKIE_SECURE', false),
    },
    production,
    secretKeyPrevious,
    security: securityConfig(env, production, databaseUrl === undefined),
    registryLimits: {
      agents: int(env, 'MAX_AGENTS', 1000, 1, 10_000_000),
      promptVersionsPerAgent: int(env, 'MAX_PROMPT_VERSIONS_PER_AGENT', 100, 1, 1_000_000),
      mcpServers: int(env, 'MAX_MCP_SERVERS', 500, 1, 1_000_000),
      trustRules: int(env, 'MAX_TRUST_RULES', 10_000, 1, 10_000_000),
    },
    health: {
      probes: bool(env, 'HEALTH_PROBES', true),
      ownerLeaseMs: int(env, 'HEALTH_OWNER_LEASE_MS', 5000, 300, 600_000),
      maxConcurrentProbes: int(env, 'HEALTH_MAX_CONCURRENT_PROBES', 16, 1, 1000),
      samples: int(env, 'HEALTH_SAMPLES', 20, 1, 1000),
      resyncMs: int(env, 'HEALTH_RESYNC_MS', 60_000, 1000, 3_600_000),
      checkBufferBytes: int(env, 'HEALTH_CHECK_BUFFER_BYTES', 64 * 1024, 1024, 64 * 1024 * 1024),
    },
  };
}

/** For entry points: the config, or exit 2 with the message naming the bad variable. */
export function loadConfigOrExit(env: Env = process.env): AppConfig {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

export const APP_CONFIG = Symbol('APP_CONFIG');
