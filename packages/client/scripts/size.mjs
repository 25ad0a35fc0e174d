#!/usr/bin/env node
// The size budget of @agentic-registry/client: each entry bundled as an application would
// (ESM, minified, tree-shaken, eventsource-parser included; rolldown, the bundler Vite uses),
// gzipped, and compared with size-budget.json. Prints a table; `--json` prints the figures;
// exits 1 when an entry is over its budget. Checked by test/size.spec.ts (so in `npm test`).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { rolldown } from 'rolldown';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const budget = JSON.parse(readFileSync(path.join(root, 'size-budget.json'), 'utf8'));

/** name → [source to bundle, platform]: whole entries, and single imports that tree-shaking must keep small. */
const cases = {
  '@agentic-registry/client (everything)': [`export * from ${JSON.stringify(path.join(root, 'src/index.ts'))};`, 'browser'],
  '{ follow } only': [`export { follow } from ${JSON.stringify(path.join(root, 'src/index.ts'))};`, 'browser'],
  '{ mirror } only': [`export { mirror } from ${JSON.stringify(path.join(root, 'src/index.ts'))};`, 'browser'],
  '{ openSession, callToolStream } only': [`export { openSession, callToolStream } from ${JSON.stringify(path.join(root, 'src/index.ts'))};`, 'browser'],
  '@agentic-registry/client/node': [`export * from ${JSON.stringify(path.join(root, 'src/node.ts'))};`, 'node'],
};

async function measure(source, platform) {
  const bundle = await rolldown({
    input: 'entry',
    platform,
    treeshake: true,
    logLevel: 'silent',
    plugins: [
      {
        name: 'entry',
        resolveId: (id) => (id === 'entry' ? '\0entry' : null),
        load: (id) => (id === '\0entry' ? source : null),
      },
    ],
  });
  const { output } = await bundle.generate({ format: 'esm', minify: true });
  await bundle.close();
  const code = output.map((o) => (o.type === 'chunk' ? o.code : '')).join('');
  return { code, minified: Buffer.byteLength(code), gzip: gzipSync(code, { level: 9 }).length };
}

const results = [];
for (const [name, [source, platform]] of Object.entries(cases)) {
  const { code, minified, gzip } = await measure(source, platform);
  // `gateway`: whether the gateway's code is in the bundle (tree-shaking must leave it out of a follow-only import).
  results.push({
    name,
    minified,
    gzip,
    budget: budget[name] ?? null,
    over: budget[name] !== undefined && gzip > budget[name],
    gateway: code.includes('/gateway/stream'),
  });
}
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(results));
} else {
  for (const r of results) {
    console.log(
      `${r.over ? 'OVER' : 'ok  '}  ${r.name.padEnd(40)} ${String(r.minified).padStart(6)} B min  ${String(r.gzip).padStart(6)} B gzip  (budget ${r.budget ?? '-'} B)`,
    );
  }
}
process.exit(results.some((r) => r.over || r.budget === null) ? 1 : 0);
