import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
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
  /** The gateway's `/mcp` Streamable HTTP endpoint (src/gateway/mcp). */
  readonly gatewayMcp: GatewayMcpConfig;
  /** The gateway's streaming sessions and tool streams (src/gateway/sessions, src/gateway/tool-streams). */
  readonly gateway: GatewayConfig;
}

export interface GatewayConfig {
  /** Serve the streaming sessions (`/api/v1/gateway/stream`). */
  readonly sessionsEnabled: boolean;
  /** Serve the tool streams (`POST /api/v1/mcp/stream`, `GET /api/v1/stream/tools/:server/:tool`). */
  readonly toolStreamsEnabled: boolean;
  /** A request without an answer after this gets an `error` event (a tool stream its `error`). */
  readonly requestTimeoutMs: number;
  /** A session with no request and no open stream for this long expires. */
  readonly sessionIdleMs: number;
  /** Open streaming sessions per client (API key or user); one more is 429. */
  readonly maxSessionsPerClient: number;
  /** Events kept per session for resumption; older ones are evicted first and the eviction reported as an `error` event. */
  readonly maxPendingEvents: number;
  /** `heartbeat` event interval on session streams. */
  readonly heartbeatMs: number;
  /** A replica closes a session's backend MCP sessions unused this long (reopened on the next request). */
  readonly backendIdleMs: number;
}

export interface GatewayMcpConfig {
  /** Serve `/mcp` at all. */
  readonly enabled: boolean;
  /** Sessions start with deferred tool loading (search_tools / activate_tools) unless `?deferred=false`. */
  readonly deferredDefault: boolean;
  /** A session (its record and stored events) expires this long after its last request. */
  readonly sessionTtlMs: number;
  /** Events kept per stream for Last-Event-ID resumption. */
  readonly eventsPerStream: number;
  /** A forwarded call (tools/call, resources/read, prompts/get) without an answer after this fails. */
  readonly callTimeoutMs: number;
  /** Each backend's part of a broadcast list (tools/list …); a slower backend is left out of that list. */
  readonly listTimeoutMs: number;
  /** A replica closes a session's transport (and its backend connections) after this idle time; any replica rebuilds it. */
  readonly localIdleMs: number;
  /** Session transports one replica holds at most (the least recently used idle one is closed beyond). */
  readonly maxLocalSessions: number;
  /** Sessions one API key (or user) holds at most, cluster-wide: a new one ends the least recently used beyond. */
  readonly maxSessionsPerClient: number;
  /** Calls (`tools/call`, `resources/read`, `prompts/get`, a list) one client may have in flight on one replica. */
  readonly maxCallsPerClient: number;
  /** Calls all clients together may have in flight on one replica. */
  readonly maxCalls: number;
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
  /** How long a replica reuses a valid API key's or session's lookup (≤ 1 s; 0: every request asks PostgreSQL). */
  readonly credentialCacheMs: number;
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
  /** The largest message read from an MCP server: one event of a stream, or a whole JSON body. */
  readonly mcpMaxMessageBytes: number;
  /** The longest a gateway call that reports progress (each progress resets its own timeout) may run in all; then it is cancelled. */
  readonly mcpCallMaxTotalMs: number;
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

// ---- variable kinds ------------------------------------------------------------
// Each is a zod schema for one environment variable. Unset, empty and blank
// values count as unset; others are trimmed. Messages complete "<VARIABLE> …".

const value = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** A string, with a default. */
const text = (fallback: string) => value.transform((v) => v ?? fallback);

/** An integer within [min, max]. */
const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, { error: (issue) => `must be an integer, got "${String(issue.input)}"` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: (issue) => `must be between ${min} and ${max}, got ${String(issue.input)}` })
        .max(max, { error: (issue) => `must be between ${min} and ${max}, got ${String(issue.input)}` }),
    );
const int = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => value.pipe(integer(min, max).default(fallback));
const optionalInt = (min: number, max: number) => value.pipe(integer(min, max).optional());

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];
const boolean = z
  .string()
  .toLowerCase()
  .refine((v) => TRUE.includes(v) || FALSE.includes(v), { error: (issue) => `must be true or false, got "${String(issue.input).toLowerCase()}"` })
  .transform((v) => TRUE.includes(v));
const bool = (fallback: boolean) => value.pipe(boolean.default(fallback));
const optionalBool = value.pipe(boolean.optional());

/** A URL with one of `protocols` (e.g. `redis:`). */
const url = (protocols: string[]) =>
  value.pipe(
    z
      .string()
      .refine((v) => URL.canParse(v), { error: 'must be a URL', abort: true })
      .refine((v) => protocols.includes(new URL(v).protocol), {
        error: (issue) => `must use ${protocols.join(' or ')}, got "${new URL(String(issue.input)).protocol}"`,
      })
      .optional(),
  );

/** A secret: at least `min` characters. */
const secret = (min: number) => value.pipe(z.string().min(min, `must be at least ${min} characters long`).optional());

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const LOG_FORMATS = ['json', 'text'] as const;
const oneOf = <T extends readonly [string, ...string[]]>(values: T, message: (got: string) => string) =>
  z
    .string()
    .toLowerCase()
    .pipe(z.enum(values, { error: (issue) => message(String(issue.input)) }));

/** `ALLOWED_ORIGINS`: comma-separated `scheme://host[:port]` origins (no path), normalized as browsers send them. */
const origins = value.pipe(
  z
    .string()
    .transform((raw, ctx) => {
      const list: string[] = [];
      for (const item of raw
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean)) {
        const origin = normalizeOrigin(item);
        if (origin === undefined) {
          ctx.addIssue({ code: 'custom', message: `must list origins such as https://admin.example.com (scheme and host, no path), got "${item}"` });
          return z.NEVER;
        }
        list.push(origin);
      }
      if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'must list at least one origin' });
      return list;
    })
    .optional(),
);

/** `TRUST_PROXY`: true, false, or a list of addresses, CIDR ranges and Fastify's named ranges. */
const trustProxy = text('loopback,uniquelocal').pipe(
  z.string().transform((raw, ctx): boolean | string => {
    const lower = raw.toLowerCase();
    if (lower === 'true' || lower === 'false') return lower === 'true';
    for (const item of raw.split(',').map((v) => v.trim())) {
      if (!/^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)$/.test(item)) {
        ctx.addIssue({
          code: 'custom',
          message: `must be true, false, or a list of addresses, CIDR ranges, loopback, linklocal, uniquelocal; got "${item}"`,
        });
        return z.NEVER;
      }
    }
    return raw;
  }),
);

// ---- the environment -------------------------------------------------------------

/**
 * Every variable the service reads, with its default and bounds (README.md,
 * Configuration). An issue's path is the variable's name.
 */
const envSchema = z
  .object({
    PORT: int(3000, 0, 65535),
    HOST: text('127.0.0.1'),
    DATABASE_URL: url(['postgres:', 'postgresql:']),
    DATABASE_POOL_SIZE: int(10, 2, 200),
    DATA_DIR: text('.data').transform((dir) => path.resolve(dir)),
    REDIS_URL: url(['redis:', 'rediss:']),
    REDIS_PREFIX: text('ar').pipe(z.string().regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"')),
    // API keys are recognised by their prefix.
    BOOTSTRAP_ADMIN_KEY: value.pipe(z.string().min(24, 'must be at least 24 characters long').startsWith('ar_', 'must start with "ar_"').optional()),
    SECRET_KEY: secret(32),
    SECRET_KEY_PREVIOUS: secret(32),
    NODE_ENV: value,
    BODY_LIMIT_BYTES: int(256 * 1024, 1024, 64 * 1024 * 1024),
    LOG_LEVEL: text('info').pipe(oneOf(LOG_LEVELS, (got) => `must be one of ${LOG_LEVELS.join(', ')}, got "${got}"`)),
    /** Default: text in the embedded developer mode (no DATABASE_URL), else JSON lines. */
    LOG_FORMAT: value.pipe(oneOf(LOG_FORMATS, (got) => `must be json or text, got "${got}"`).optional()),
    REPLICA_ID: value.transform((v) => v ?? randomUUID()),
    SHUTDOWN_GRACE_MS: int(25_000, 0, 600_000),
    SHUTDOWN_DELAY_MS: int(0, 0, 300_000),
    SEQUENCER_POLL_MS: int(1000, 10, 60_000),
    SEQUENCER_BATCH_SIZE: int(1000, 1, 100_000),
    SEQUENCER_LEASE_MS: int(1000, 200, 60_000),
    SSE_KEEPALIVE_MS: int(30_000, 100, 3_600_000),
    SSE_RETRY_MS: int(2000, 0, 600_000),
    STREAM_WINDOW_SIZE: int(10_000, 0, 10_000_000),
    STREAM_MAX_BUFFER_BYTES: int(1024 * 1024, 1024, 1024 * 1024 * 1024),
    STREAM_HEAD_POLL_MS: int(1000, 10, 60_000),
    STREAM_REPLAY_PAGE_SIZE: int(5000, 10, 100_000),
    OUTBOX_RETENTION_MS: int(7 * 24 * 3600 * 1000, 0),
    OUTBOX_RETENTION_EVENTS: int(1_000_000, 0),
    OUTBOX_PRUNE_INTERVAL_MS: int(60_000, 100, 86_400_000),
    MAX_CONNECTIONS_PER_USER: int(100, 1, 10_000_000),
    MAX_CONNECTIONS_TOTAL: int(50_000, 1, 100_000_000),
    CONNECTION_LEASE_MS: int(30_000, 1000, 3_600_000),
    SESSION_TTL_MS: int(12 * 3600 * 1000, 60_000, 365 * 24 * 3600 * 1000),
    SESSION_COOKIE_SECURE: bool(false),
    ALLOWED_ORIGINS: origins,
    TRUST_PROXY: trustProxy,
    CREDENTIAL_CHECK_MS: int(400, 50, 60_000),
    CREDENTIAL_CACHE_MS: int(1000, 0, 1000),
    LOGIN_MAX_FAILURES: int(5, 1, 1000),
    LOGIN_MAX_FAILURES_PER_IP: int(20, 1, 100_000),
    LOGIN_BACKOFF_MS: int(1000, 100, 3_600_000),
    LOGIN_BACKOFF_MAX_MS: int(15 * 60_000, 100, 86_400_000),
    LOGIN_FAILURE_WINDOW_MS: int(15 * 60_000, 1000, 86_400_000),
    PASSWORD_HASH_CONCURRENCY: int(2, 1, 64),
    /** Default: on in the embedded developer mode (it talks to local MCP servers), off otherwise and in production. */
    MCP_ALLOW_PRIVATE_NETWORKS: optionalBool,
    MCP_MAX_MESSAGE_BYTES: int(16 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    /** Default: 10 minutes, or the longer of GATEWAY_MCP_CALL_TIMEOUT_MS and GATEWAY_REQUEST_TIMEOUT_MS if that is longer. */
    MCP_CALL_MAX_TOTAL_MS: optionalInt(100, 24 * 3600 * 1000),
    METRICS_TOKEN: value.pipe(z.string().min(16, 'must be at least 16 characters long').optional()),
    METRICS_PORT: optionalInt(1, 65535),
    MAX_AGENTS: int(1000, 1, 10_000_000),
    MAX_PROMPT_VERSIONS_PER_AGENT: int(100, 1, 1_000_000),
    MAX_MCP_SERVERS: int(500, 1, 1_000_000),
    MAX_TRUST_RULES: int(10_000, 1, 10_000_000),
    HEALTH_PROBES: bool(true),
    HEALTH_OWNER_LEASE_MS: int(5000, 300, 600_000),
    HEALTH_MAX_CONCURRENT_PROBES: int(16, 1, 1000),
    HEALTH_SAMPLES: int(20, 1, 1000),
    HEALTH_RESYNC_MS: int(60_000, 1000, 3_600_000),
    HEALTH_CHECK_BUFFER_BYTES: int(64 * 1024, 1024, 64 * 1024 * 1024),
    GATEWAY_MCP_ENABLED: bool(true),
    GATEWAY_MCP_DEFERRED_DEFAULT: bool(false),
    GATEWAY_MCP_SESSION_TTL_MS: int(3600 * 1000, 10_000, 7 * 24 * 3600 * 1000),
    GATEWAY_MCP_EVENTS_PER_STREAM: int(1000, 10, 1_000_000),
    GATEWAY_MCP_CALL_TIMEOUT_MS: int(60_000, 100, 3_600_000),
    GATEWAY_MCP_LIST_TIMEOUT_MS: int(10_000, 100, 600_000),
    GATEWAY_MCP_LOCAL_IDLE_MS: int(5 * 60_000, 1000, 24 * 3600 * 1000),
    GATEWAY_MCP_MAX_LOCAL_SESSIONS: int(10_000, 1, 1_000_000),
    GATEWAY_MCP_MAX_SESSIONS_PER_CLIENT: int(100, 1, 100_000),
    GATEWAY_MCP_MAX_CALLS_PER_CLIENT: int(200, 1, 1_000_000),
    GATEWAY_MCP_MAX_CALLS: int(10_000, 1, 10_000_000),
    GATEWAY_SESSIONS_ENABLED: bool(true),
    GATEWAY_TOOL_STREAMS_ENABLED: bool(true),
    GATEWAY_REQUEST_TIMEOUT_MS: int(60_000, 100, 3_600_000),
    GATEWAY_SESSION_IDLE_MS: int(3600 * 1000, 1000, 7 * 24 * 3600 * 1000),
    GATEWAY_MAX_SESSIONS_PER_CLIENT: int(5, 1, 10_000),
    GATEWAY_MAX_PENDING_EVENTS: int(1000, 10, 1_000_000),
    GATEWAY_HEARTBEAT_MS: int(30_000, 100, 3_600_000),
    GATEWAY_BACKEND_IDLE_MS: int(60_000, 1000, 24 * 3600 * 1000),
  })
  .superRefine((env, ctx) => {
    const fail = (variable: string, message: string) => ctx.addIssue({ code: 'custom', path: [variable], message });
    if (env.NODE_ENV === 'production' && env.SECRET_KEY === undefined) {
      fail('SECRET_KEY', 'must be set when NODE_ENV=production (32+ random characters; it encrypts MCP server secrets)');
    }
    if (env.SECRET_KEY_PREVIOUS !== undefined && env.SECRET_KEY === undefined) fail('SECRET_KEY_PREVIOUS', 'needs SECRET_KEY (the new key) to be set too');
    if (env.METRICS_PORT !== undefined && env.METRICS_PORT === env.PORT) fail('METRICS_PORT', 'must differ from PORT');
    if (env.LOGIN_BACKOFF_MAX_MS < env.LOGIN_BACKOFF_MS) fail('LOGIN_BACKOFF_MAX_MS', 'must be at least LOGIN_BACKOFF_MS');
    for (const timeout of ['GATEWAY_MCP_CALL_TIMEOUT_MS', 'GATEWAY_REQUEST_TIMEOUT_MS'] as const) {
      if (env.MCP_CALL_MAX_TOTAL_MS !== undefined && env.MCP_CALL_MAX_TOTAL_MS < env[timeout])
        fail('MCP_CALL_MAX_TOTAL_MS', `must be at least ${timeout} (${env[timeout]}), got ${env.MCP_CALL_MAX_TOTAL_MS}`);
    }
  });

type Environment = z.output<typeof envSchema>;

function toAppConfig(env: Environment): AppConfig {
  const production = env.NODE_ENV === 'production';
  const embedded = env.DATABASE_URL === undefined;
  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    dataDir: env.DATA_DIR,
    redisUrl: env.REDIS_URL,
    redisPrefix: env.REDIS_PREFIX,
    bootstrapAdminKey: env.BOOTSTRAP_ADMIN_KEY,
    secretKey: env.SECRET_KEY,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT ?? (embedded ? 'text' : 'json'),
    replicaId: env.REPLICA_ID,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    shutdownDelayMs: env.SHUTDOWN_DELAY_MS,
    sequencer: { pollMs: env.SEQUENCER_POLL_MS, batchSize: env.SEQUENCER_BATCH_SIZE, leaseMs: env.SEQUENCER_LEASE_MS },
    stream: {
      keepAliveMs: env.SSE_KEEPALIVE_MS,
      retryMs: env.SSE_RETRY_MS,
      windowSize: env.STREAM_WINDOW_SIZE,
      maxBufferBytes: env.STREAM_MAX_BUFFER_BYTES,
      headPollMs: env.STREAM_HEAD_POLL_MS,
      replayPageSize: env.STREAM_REPLAY_PAGE_SIZE,
    },
    retention: { maxAgeMs: env.OUTBOX_RETENTION_MS, maxEvents: env.OUTBOX_RETENTION_EVENTS, intervalMs: env.OUTBOX_PRUNE_INTERVAL_MS },
    limits: { connectionsPerUser: env.MAX_CONNECTIONS_PER_USER, connectionsTotal: env.MAX_CONNECTIONS_TOTAL, leaseMs: env.CONNECTION_LEASE_MS },
    session: { ttlMs: env.SESSION_TTL_MS, cookieSecure: env.SESSION_COOKIE_SECURE },
    production,
    secretKeyPrevious: env.SECRET_KEY_PREVIOUS,
    security: {
      allowedOrigins: env.ALLOWED_ORIGINS,
      trustProxy: env.TRUST_PROXY,
      credentialCheckMs: env.CREDENTIAL_CHECK_MS,
      credentialCacheMs: env.CREDENTIAL_CACHE_MS,
      login: {
        maxFailuresPerUser: env.LOGIN_MAX_FAILURES,
        maxFailuresPerIp: env.LOGIN_MAX_FAILURES_PER_IP,
        backoffMs: env.LOGIN_BACKOFF_MS,
        backoffMaxMs: env.LOGIN_BACKOFF_MAX_MS,
        failureWindowMs: env.LOGIN_FAILURE_WINDOW_MS,
      },
      passwordHashConcurrency: env.PASSWORD_HASH_CONCURRENCY,
      mcpAllowPrivateNetworks: env.MCP_ALLOW_PRIVATE_NETWORKS ?? (embedded && !production),
      mcpMaxMessageBytes: env.MCP_MAX_MESSAGE_BYTES,
      mcpCallMaxTotalMs: env.MCP_CALL_MAX_TOTAL_MS ?? Math.max(10 * 60_000, env.GATEWAY_MCP_CALL_TIMEOUT_MS, env.GATEWAY_REQUEST_TIMEOUT_MS),
      metricsToken: env.METRICS_TOKEN,
      metricsPort: env.METRICS_PORT,
    },
    registryLimits: {
      agents: env.MAX_AGENTS,
      promptVersionsPerAgent: env.MAX_PROMPT_VERSIONS_PER_AGENT,
      mcpServers: env.MAX_MCP_SERVERS,
      trustRules: env.MAX_TRUST_RULES,
    },
    health: {
      probes: env.HEALTH_PROBES,
      ownerLeaseMs: env.HEALTH_OWNER_LEASE_MS,
      maxConcurrentProbes: env.HEALTH_MAX_CONCURRENT_PROBES,
      samples: env.HEALTH_SAMPLES,
      resyncMs: env.HEALTH_RESYNC_MS,
      checkBufferBytes: env.HEALTH_CHECK_BUFFER_BYTES,
    },
    gatewayMcp: {
      enabled: env.GATEWAY_MCP_ENABLED,
      deferredDefault: env.GATEWAY_MCP_DEFERRED_DEFAULT,
      sessionTtlMs: env.GATEWAY_MCP_SESSION_TTL_MS,
      eventsPerStream: env.GATEWAY_MCP_EVENTS_PER_STREAM,
      callTimeoutMs: env.GATEWAY_MCP_CALL_TIMEOUT_MS,
      listTimeoutMs: env.GATEWAY_MCP_LIST_TIMEOUT_MS,
      localIdleMs: env.GATEWAY_MCP_LOCAL_IDLE_MS,
      maxLocalSessions: env.GATEWAY_MCP_MAX_LOCAL_SESSIONS,
      maxSessionsPerClient: env.GATEWAY_MCP_MAX_SESSIONS_PER_CLIENT,
      maxCallsPerClient: env.GATEWAY_MCP_MAX_CALLS_PER_CLIENT,
      maxCalls: env.GATEWAY_MCP_MAX_CALLS,
    },
    gateway: {
      sessionsEnabled: env.GATEWAY_SESSIONS_ENABLED,
      toolStreamsEnabled: env.GATEWAY_TOOL_STREAMS_ENABLED,
      requestTimeoutMs: env.GATEWAY_REQUEST_TIMEOUT_MS,
      sessionIdleMs: env.GATEWAY_SESSION_IDLE_MS,
      maxSessionsPerClient: env.GATEWAY_MAX_SESSIONS_PER_CLIENT,
      maxPendingEvents: env.GATEWAY_MAX_PENDING_EVENTS,
      heartbeatMs: env.GATEWAY_HEARTBEAT_MS,
      backendIdleMs: env.GATEWAY_BACKEND_IDLE_MS,
    },
  };
}

/** Reads and validates the environment; a bad value throws ConfigError naming its variable. */
export function loadConfig(env: Env = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  return toAppConfig(parsed.data);
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
