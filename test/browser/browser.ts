import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type ConsoleMessage, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install -y chromium`); never a browser downloaded by Playwright. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = path.resolve('.cache/browser-artifacts');

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return t;
}

/**
 * The replicas serve gui/dist (built by `npm run build`). `npm test` builds
 * only the server, so the GUI is built here when it is missing or older than
 * its sources.
 */
export function ensureGuiBuilt(): void {
  const index = path.resolve('gui/dist/index.html');
  const sources = Math.max(
    newest(path.resolve('gui/src')),
    statSync(path.resolve('gui/index.html')).mtimeMs,
    statSync(path.resolve('src/events/socket-protocol.ts')).mtimeMs,
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const result = spawnSync(process.execPath, [path.resolve('node_modules/vite/bin/vite.js'), 'build', '--config', 'gui/vite.config.ts', '--logLevel', 'warn'], {
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error('building the admin GUI (vite build) failed');
}

export function assertChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`);
}

/** Console errors and uncaught exceptions of one page; a test fails on any it did not expect. */
export class PageErrors {
  readonly errors: string[] = [];
  private allowed: RegExp[] = [];

  constructor(
    readonly name: string,
    page: Page,
  ) {
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() !== 'error') return;
      const text = `${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`;
      if (this.allowed.some((re) => re.test(text))) return;
      this.errors.push(text);
    });
    page.on('pageerror', (e) => this.errors.push(`uncaught: ${e.message}`));
  }

  /** Expected errors while `fn` runs (e.g. the browser's "Failed to load resource: 412" of a conflict). */
  async expecting<T>(patterns: RegExp[], fn: () => Promise<T>): Promise<T> {
    this.allowed = patterns;
    try {
      return await fn();
    } finally {
      this.allowed = [];
    }
  }
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  errors: PageErrors;
  close(): Promise<void>;
}

/** One user: a persistent context (its own profile directory, so its own cookies) with one page. */
export async function openBrowser(name: string, viewport = { width: 1280, height: 800 }): Promise<Browser> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `gui-${name}-`));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = new PageErrors(name, page);
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Whether the page body scrolls sideways (it must not, at any width). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Presses Tab until the focused element matches `accessibleText`; fails after `max` presses. */
export async function tabTo(page: Page, accessibleText: RegExp, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return el ? `${el.getAttribute('aria-label') ?? ''} ${el.textContent ?? ''}`.trim() : '';
    });
    if (accessibleText.test(focused)) return;
  }
  throw new Error(`no element matching ${accessibleText} reached with Tab in ${max} presses`);
}
