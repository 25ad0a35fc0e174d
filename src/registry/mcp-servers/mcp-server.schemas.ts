import { z } from 'zod';
import { listQuery, slug } from '../registry.schemas.js';

export const TRANSPORTS = ['streamable-http', 'sse'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/**
 * The MCP endpoint: absolute http(s) URL, without user:password (those belong in
 * `headers`). A query string is allowed and stored encrypted (it may hold a key).
 */
const httpUrl = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http or https URL' });
      return;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http or https URL' });
    } else if (parsed.username !== '' || parsed.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not contain credentials; send them as headers, which are stored encrypted' });
    } else if (value.includes('#')) {
      ctx.addIssue({ code: 'custom', message: 'must not contain a fragment (#…)' });
    }
  });

/** RFC 9110 token. */
const headerName = z
  .string()
  .max(100)
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
/** Visible characters, spaces and tabs: no CR, LF or NUL (no header injection). */
const headerValue = z
  .string()
  .max(8192)
  .regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'must be a valid header value (no control characters or line breaks)');

export const MAX_HEADERS = 20;

/** Header name -> value, e.g. `{"Authorization": "Bearer ..."}`. Values are secrets. */
export const headersSchema = z
  .record(headerName, headerValue, {
    error: (issue) => (issue.code === 'invalid_key' ? "must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)" : undefined),
  })
  .refine((h) => Object.keys(h).length <= MAX_HEADERS, `must have at most ${MAX_HEADERS} headers`)
  .refine(
    (h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length,
    'must not repeat a header name (names are case-insensitive)',
  );

const healthCheckFields = {
  intervalMs: z.number().int().min(1000).max(3_600_000),
  timeoutMs: z.number().int().min(100).max(60_000),
  unhealthyThreshold: z.number().int().min(1).max(20),
  healthyThreshold: z.number().int().min(1).max(20),
  /** A check slower than this (initialize + ping [+ tools/list]) makes the server `degraded`. */
  latencyThresholdMs: z.number().int().min(10).max(60_000),
  /** Also call `tools/list` (count and hash recorded: a changed tool list is noticed). */
  listTools: z.boolean(),
  /** Circuit breaker: consecutive failures (probes or gateway calls) that open it. */
  failureThreshold: z.number().int().min(1).max(100),
  /** First cool-down of an open circuit before a trial call (half_open); doubled at each failed trial. */
  coolDownMs: z.number().int().min(500).max(3_600_000),
  /** Upper bound of the growing cool-down. */
  maxCoolDownMs: z.number().int().min(500).max(86_400_000),
};

export const HEALTH_CHECK_DEFAULTS = {
  intervalMs: 30_000,
  timeoutMs: 5000,
  unhealthyThreshold: 3,
  healthyThreshold: 1,
  latencyThresholdMs: 2000,
  listTools: false,
  failureThreshold: 5,
  coolDownMs: 30_000,
  maxCoolDownMs: 300_000,
} as const;

const healthCheckSchema = z
  .strictObject({
    intervalMs: healthCheckFields.intervalMs.default(HEALTH_CHECK_DEFAULTS.intervalMs),
    timeoutMs: healthCheckFields.timeoutMs.default(HEALTH_CHECK_DEFAULTS.timeoutMs),
    unhealthyThreshold: healthCheckFields.unhealthyThreshold.default(HEALTH_CHECK_DEFAULTS.unhealthyThreshold),
    healthyThreshold: healthCheckFields.healthyThreshold.default(HEALTH_CHECK_DEFAULTS.healthyThreshold),
    latencyThresholdMs: healthCheckFields.latencyThresholdMs.default(HEALTH_CHECK_DEFAULTS.latencyThresholdMs),
    listTools: healthCheckFields.listTools.default(HEALTH_CHECK_DEFAULTS.listTools),
    failureThreshold: healthCheckFields.failureThreshold.default(HEALTH_CHECK_DEFAULTS.failureThreshold),
    coolDownMs: healthCheckFields.coolDownMs.default(HEALTH_CHECK_DEFAULTS.coolDownMs),
    maxCoolDownMs: healthCheckFields.maxCoolDownMs.default(HEALTH_CHECK_DEFAULTS.maxCoolDownMs),
  })
  .prefault({})
  // Cross-field checks only once every field is valid on its own (no second error on the same field).
  .refine((h) => h.timeoutMs < h.intervalMs, { path: ['timeoutMs'], message: 'must be less than intervalMs', when: (p) => p.issues.length === 0 })
  .refine((h) => h.maxCoolDownMs >= h.coolDownMs, { path: ['maxCoolDownMs'], message: 'must be at least coolDownMs', when: (p) => p.issues.length === 0 });

export const createMcpServerSchema = z.strictObject({
  id: slug,
  name: z.string().trim().min(1).max(200),
  url: httpUrl,
  transport: z.enum(TRANSPORTS).default('streamable-http'),
  headers: headersSchema.default({}),
  healthCheck: healthCheckSchema,
  enabled: z.boolean().default(true),
});

/**
 * PATCH: every field optional. `headers` replaces the whole header set (`{}`
 * removes them all); `healthCheck` merges into the current settings.
 */
export const updateMcpServerSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    url: httpUrl,
    transport: z.enum(TRANSPORTS),
    headers: headersSchema,
    healthCheck: z.strictObject(healthCheckFields).partial(),
    enabled: z.boolean(),
    version: z.number().int().min(1),
  })
  .partial()
  .refine((patch) => Object.keys(patch).some((k) => k !== 'version'), 'must change at least one field');

export const listMcpServersQuery = listQuery.extend({
  enabled: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((v) => v === 'true')
    .optional(),
});

export type CreateMcpServer = z.infer<typeof createMcpServerSchema>;
export type UpdateMcpServer = z.infer<typeof updateMcpServerSchema>;
export type HealthCheck = z.infer<typeof healthCheckSchema>;
