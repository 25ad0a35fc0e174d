import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip, AdminAssets, etagMatches, IMMUTABLE, REVALIDATE } from './admin-assets.js';

describe('AdminAssets', () => {
  let root: string;
  let outside: string;

  beforeEach(() => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'admin-assets-'));
    root = path.join(base, 'dist');
    outside = path.join(base, 'secret.txt');
    writeFileSync(outside, 'top secret');
    mkdirSync(path.join(root, 'assets'), { recursive: true });
    writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>GUI</title>');
    writeFileSync(path.join(root, 'favicon.svg'), '<svg/>');
    writeFileSync(path.join(root, 'assets', 'index-abc123.js'), `console.log(${JSON.stringify('x'.repeat(4000))});`);
    writeFileSync(path.join(root, 'assets', 'index-abc123.css'), 'body{}');
    writeFileSync(path.join(root, '.hidden'), 'no');
    symlinkSync(outside, path.join(root, 'assets', 'link.txt'));
  });

  afterEach(() => rmSync(path.dirname(root), { recursive: true, force: true }));

  it('answers index.html for the root and for the GUI routes (SPA fallback), revalidated', () => {
    const assets = new AdminAssets(root);
    for (const p of ['', '/', '/index.html', '/agents', '/prompts/pmo', '/mcp-servers/']) {
      const answer = assets.resolve(p);
      expect(answer.kind).toBe('file');
      if (answer.kind !== 'file') continue;
      expect(answer.file.body.toString()).toContain('<title>GUI</title>');
      expect(answer.file.contentType).toBe('text/html; charset=utf-8');
      expect(answer.file.cacheControl).toBe(REVALIDATE);
    }
  });

  it('serves hashed assets as immutable, other files revalidated, with their content types', () => {
    const assets = new AdminAssets(root);
    const js = assets.resolve('/assets/index-abc123.js');
    const css = assets.resolve('/assets/index-abc123.css');
    const icon = assets.resolve('/favicon.svg');
    expect(js.kind === 'file' && js.file.contentType).toBe('text/javascript; charset=utf-8');
    expect(js.kind === 'file' && js.file.cacheControl).toBe(IMMUTABLE);
    expect(css.kind === 'file' && css.file.contentType).toBe('text/css; charset=utf-8');
    expect(icon.kind === 'file' && icon.file.contentType).toBe('image/svg+xml');
    expect(icon.kind === 'file' && icon.file.cacheControl).toBe(REVALIDATE);
    // Large text is pre-compressed once.
    expect(js.kind === 'file' && js.file.gzip && gunzipSync(js.file.gzip).equals(js.file.body)).toBe(true);
  });

  it('a missing asset or file-like path is not found, never the index', () => {
    const assets = new AdminAssets(root);
    expect(assets.resolve('/assets/index-gone.js').kind).toBe('not_found');
    expect(assets.resolve('/assets/nothing').kind).toBe('not_found');
    expect(assets.resolve('/robots.txt').kind).toBe('not_found');
  });

  it('cannot reach outside the build output: traversal, encoded traversal, absolute paths, symlinks, dotfiles', () => {
    const assets = new AdminAssets(root);
    for (const p of [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
      `/${outside}`,
      `//${outside}`,
      '/assets/link.txt',
      '/.hidden',
      '/assets/..\\..\\secret.txt',
    ]) {
      const answer = assets.resolve(p);
      if (answer.kind === 'file') expect(answer.file.body.toString()).not.toContain('top secret');
      expect(answer.kind === 'file' ? answer.file.body.toString() : '').not.toBe('no');
    }
  });

  it('without a build: unavailable with a clear message, and picks the build up once it appears or changes', () => {
    const missing = path.join(path.dirname(root), 'not-built');
    const assets = new AdminAssets(missing);
    const answer = assets.resolve('/');
    expect(answer).toEqual({ kind: 'unavailable', detail: expect.stringContaining('npm run build') });

    mkdirSync(missing);
    writeFileSync(path.join(missing, 'index.html'), 'v1');
    const first = assets.resolve('/');
    expect(first.kind === 'file' && first.file.body.toString()).toBe('v1');

    writeFileSync(path.join(missing, 'index.html'), 'v2');
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(missing, 'index.html'), later, later);
    const second = assets.resolve('/');
    expect(second.kind === 'file' && second.file.body.toString()).toBe('v2');
    expect(first.kind === 'file' && second.kind === 'file' && first.file.etag !== second.file.etag).toBe(true);
  });

  it('etagMatches and acceptsGzip read the request headers as HTTP means them', () => {
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b", "a"', '"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches(undefined, '"a"')).toBe(false);
    expect(acceptsGzip('gzip, deflate, br')).toBe(true);
    expect(acceptsGzip('br;q=1, gzip;q=0.5')).toBe(true);
    expect(acceptsGzip('gzip;q=0')).toBe(false);
    expect(acceptsGzip('br')).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
  });
});
