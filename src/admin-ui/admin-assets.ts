import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../common/domain-error.js';

/**
 * The built admin GUI (`npm run build` → `gui/dist`, by Vite) held in memory
 * and answered from there. Requests are looked up in the map of files that
 * the build produced, never joined onto a file system path: a URL cannot
 * reach anything outside the build output (`..`, encoded slashes, absolute
 * paths, symlinks), whatever it contains.
 */

/** Where `npm run build` writes the GUI: `<repo>/gui/dist`, two levels above this file in `src/` and in `dist/`. */
export const DEFAULT_ADMIN_UI_DIR = fileURLToPath(new URL('../../gui/dist/', import.meta.url));

/** The URL prefix the GUI is served under (Vite's `base`). */
export const ADMIN_BASE = '/admin';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.webmanifest']);

/** Hashed build output (`assets/index-3f2a1b.js`): its name changes with its content. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Everything else (index.html, favicon): always revalidated (ETag → 304). */
export const REVALIDATE = 'no-cache';

/**
 * The GUI page's own security headers: scripts, styles and connections from
 * this origin only (Socket.IO's WebSocket included: CSP Level 3 `'self'`
 * matches ws:/wss: of the same host), nothing may frame it, and no referrer
 * leaves the origin (`same-origin`, not `no-referrer`: a same-origin POST must
 * keep its `Origin` header for the CSRF check).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export interface AssetFile {
  readonly body: Buffer;
  /** gzip of `body` when it is text and compression pays off. */
  readonly gzip?: Buffer;
  readonly contentType: string;
  readonly etag: string;
  readonly cacheControl: string;
}

export type AssetAnswer =
  | { kind: 'file'; file: AssetFile }
  /** The GUI was not built (or the build output is unreadable). */
  | { kind: 'unavailable'; detail: string }
  /** A file-like path (an asset, `x.js`) that the build does not have. */
  | { kind: 'not_found' };

interface Loaded {
  readonly indexMtimeMs: number;
  readonly files: ReadonlyMap<string, AssetFile>;
}

export class AdminAssets {
  private loaded?: Loaded;

  constructor(readonly root: string = DEFAULT_ADMIN_UI_DIR) {}

  /**
   * What to answer for a path below `/admin` (`''`, `/`, `/agents`,
   * `/assets/index-x.js`), query string already removed. Unknown paths
   * without a file extension are the GUI's own routes: index.html.
   */
  resolve(subPath: string): AssetAnswer {
    const files = this.files();
    if (!files) return { kind: 'unavailable', detail: `the admin GUI is not built (no ${path.join(this.root, 'index.html')}): run \`npm run build\`` };
    const rel = subPath.replace(/^\/+/, '');
    if (rel === '' || rel === 'index.html') return { kind: 'file', file: files.get('index.html')! };
    const file = files.get(rel);
    if (file) return { kind: 'file', file };
    const last = rel.slice(rel.lastIndexOf('/') + 1);
    if (rel.startsWith('assets/') || last.includes('.')) return { kind: 'not_found' };
    return { kind: 'file', file: files.get('index.html')! };
  }

  /** The build output, (re)read when index.html appears or changes (a rebuild); undefined while there is none. */
  private files(): ReadonlyMap<string, AssetFile> | undefined {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path.join(this.root, 'index.html')).mtimeMs;
    } catch {
      this.loaded = undefined;
      return undefined;
    }
    if (this.loaded?.indexMtimeMs === mtimeMs) return this.loaded.files;
    try {
      const files = new Map<string, AssetFile>();
      this.walk('', files);
      if (!files.has('index.html')) return undefined;
      this.loaded = { indexMtimeMs: mtimeMs, files };
      return files;
    } catch {
      // Half-written by a build in progress: try again at the next request.
      return undefined;
    }
  }

  private walk(rel: string, into: Map<string, AssetFile>): void {
    for (const entry of readdirSync(path.join(this.root, rel), { withFileTypes: true })) {
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      // Regular files and directories of the build only: no symlinks out of it, no dotfiles.
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) this.walk(childRel, into);
      else if (entry.isFile()) into.set(childRel, assetFile(readFileSync(path.join(this.root, childRel)), childRel));
    }
  }
}

function assetFile(body: Buffer, rel: string): AssetFile {
  const ext = path.extname(rel).toLowerCase();
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  let gzip: Buffer | undefined;
  if (COMPRESSIBLE.has(ext) && body.length > 1024) {
    const packed = gzipSync(body, { level: 9 });
    if (packed.length < body.length * 0.9) gzip = packed;
  }
  return {
    body,
    gzip,
    contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream',
    etag,
    cacheControl: rel.startsWith('assets/') ? IMMUTABLE : REVALIDATE,
  };
}

/** Whether an `If-None-Match` header matches `etag` (a list, weak forms and `*` included). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

/** Whether the client takes gzip (`Accept-Encoding: gzip`, not `gzip;q=0`). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  return acceptEncoding.split(',').some((part) => {
    const [name, ...params] = part.trim().split(';');
    if (name.trim().toLowerCase() !== 'gzip' && name.trim() !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/**
 * Answers a GET for one of `assets`' files under `base` (`/admin`, `/demo`): 503 while
 * nothing is built, 404 for a missing file, 304 when the ETag matches, else the file (gzipped
 * when the client takes it) with its cache and security headers. `what` names the page in errors.
 */
export async function sendAsset(
  assets: AdminAssets,
  base: string,
  what: string,
  request: FastifyRequest,
  reply: FastifyReply,
  ifNoneMatch: string | undefined,
): Promise<void> {
  const pathname = request.url.split('?')[0];
  const answer = assets.resolve(pathname.slice(base.length));
  if (answer.kind === 'unavailable')
    throw new DomainError('service_unavailable', answer.detail.replace('admin GUI', what), { headers: { 'retry-after': '10' } });
  if (answer.kind === 'not_found') throw new DomainError('not_found', `no such file in the ${what}`);
  const { file } = answer;
  reply.headers(SECURITY_HEADERS).header('cache-control', file.cacheControl).header('etag', file.etag).header('vary', 'accept-encoding');
  if (etagMatches(ifNoneMatch, file.etag)) {
    await reply.status(304).send();
    return;
  }
  reply.type(file.contentType);
  if (file.gzip && acceptsGzip(request.headers['accept-encoding'])) {
    await reply.header('content-encoding', 'gzip').send(file.gzip);
    return;
  }
  await reply.send(file.body);
}
