/**
 * Client library of the Agentic Registry, for BFFs (Node 22+) and browsers:
 *
 * - `follow()` / `followFeed()`: the change stream as an async iterator or an `EventTarget`, resumed on its own;
 * - `mirror()`: an in-memory replica of the whole registry, kept up to date;
 * - `followHealth()`: MCP server health, a snapshot then changes;
 * - `openSession()` / `callToolStream()`: the MCP gateway's streaming sessions and streamed tool calls.
 *
 * `fileCursorStore` (Node only) is in `@agentic-registry/client/node`.
 * @module
 */
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { type CursorStore, memoryCursorStore } from './cursor-store.js';
export { HttpError, JsonRpcError, RegistryError, RequestTimeoutError, SessionClosedError, StreamIdleError, StreamResetError } from './errors.js';
export { ChangeFeed, follow, followFeed, type FollowOptions, type ResetInfo } from './follow.js';
export {
  GatewaySession,
  type JsonRpcNotification,
  type JsonRpcResponse,
  openSession,
  type OpenSessionOptions,
  type SessionServer,
  TIMEOUT_CODE,
} from './gateway.js';
export { type FollowHealthOptions, followHealth, type HealthCheckResult, type HealthUpdate, type ServerHealth } from './health.js';
export { type ConnectionOptions, requestJson } from './http.js';
export { type Entry, keyOf, mirror, type MirrorChange, type MirrorOptions, RegistryMirror } from './mirror.js';
export { BROADCAST_METHODS, isBroadcastMethod, NAMESPACE_SEPARATOR, namespaced, parseNamespaced } from './namespacing.js';
export { readSse, type SseFrame, type StreamOptions, type StreamStatus } from './sse.js';
export { callToolStream, type CallToolStreamOptions, type ToolStreamEvent } from './tool-stream.js';
export type { Agent, ChangeEvent, DiscoverySnapshot, McpServer, Prompt, ResourceKind, Section, SectionTypes, TrustRule } from './types.js';
