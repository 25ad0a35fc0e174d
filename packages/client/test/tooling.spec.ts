import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const pkg = path.resolve('packages/client');

interface SizeResult {
  name: string;
  minified: number;
  gzip: number;
  budget: number | null;
  over: boolean;
  gateway: boolean;
}

describe('the package: size budget, API docs', () => {
  it('each entry, bundled minified and gzipped, is within size-budget.json, and tree-shaking leaves the gateway out of a follow-only import', () => {
    const run = spawnSync(process.execPath, [path.join(pkg, 'scripts/size.mjs'), '--json'], { encoding: 'utf8', cwd: pkg, timeout: 60_000 });
    expect(run.stderr).toBe('');
    const results = JSON.parse(run.stdout) as SizeResult[];
    expect(results.length).toBe(5);
    for (const r of results) {
      expect({ name: r.name, budgeted: r.budget !== null, over: r.over }).toEqual({ name: r.name, budgeted: true, over: false });
    }
    const everything = results.find((r) => r.name.includes('everything'))!;
    const followOnly = results.find((r) => r.name === '{ follow } only')!;
    expect(everything.gateway).toBe(true);
    expect(followOnly.gateway).toBe(false);
    expect(followOnly.gzip).toBeLessThan(everything.gzip * 0.7);
    expect(run.status).toBe(0);
  }, 90_000);

  it('TypeDoc generates the API docs from the source without a warning (broken links, unexported types)', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'client-docs-'));
    try {
      const run = spawnSync(process.execPath, [path.resolve('node_modules/typedoc/bin/typedoc'), '--options', 'typedoc.json', '--out', out], {
        encoding: 'utf8',
        cwd: pkg,
        timeout: 120_000,
      });
      expect(`${run.stdout}${run.stderr}`).not.toMatch(/\[warning\]|\[error\]/);
      expect(run.status).toBe(0);
      const index = readFileSync(path.join(out, 'index.html'), 'utf8');
      expect(index).toContain('@agentic-registry/client');
      for (const page of [
        'functions/index.follow.html',
        'functions/index.mirror.html',
        'functions/index.openSession.html',
        'functions/node.fileCursorStore.html',
      ]) {
        expect({ page, exists: existsSync(path.join(out, page)) }).toEqual({ page, exists: true });
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 150_000);
});
