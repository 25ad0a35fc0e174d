import { MASK } from './mcp-server.repository.js';
import type { Sealer } from './secret-box.js';

/**
 * An MCP server URL's query string may carry a credential
 * (`https://mcp.example.com/sse?api_key=…`). The URL is kept twice: masked
 * (every query value replaced by `***`, names kept) in `url`, which the API,
 * discovery and events show, and whole, encrypted like the headers, in
 * `url_secret` (null when there is no query string).
 */
export function maskUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const query = url.slice(q + 1);
  if (query === '') return url.slice(0, q);
  const masked = query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq === -1 ? `${pair}=${MASK}` : `${pair.slice(0, eq)}=${MASK}`;
    })
    .join('&');
  return `${url.slice(0, q)}?${masked}`;
}

export interface SealedUrl {
  /** What the API shows and the `url` column holds. */
  masked: string;
  /** The whole URL, sealed; null when nothing needs hiding. */
  secret: string | null;
}

const context = (id: string) => `mcp_server_url:${id}`;

export function sealUrl(box: Sealer, id: string, url: string): SealedUrl {
  const masked = maskUrl(url);
  return { masked, secret: masked === url ? null : box.encrypt(url, context(id)) };
}

/** The real URL: decrypted from `secret`, or the stored URL when it has none. */
export function openUrl(box: Sealer, id: string, stored: { url: string; secret: string | null }): string {
  return stored.secret === null ? stored.url : box.decrypt(stored.secret, context(id));
}

export function resealUrl(box: Sealer, id: string, secret: string): string {
  return box.encrypt(box.decrypt(secret, context(id)), context(id));
}
