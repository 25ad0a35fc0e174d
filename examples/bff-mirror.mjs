// A backend-for-frontend that keeps a local replica of the whole registry and serves it from memory.
//
//   REGISTRY_URL=http://127.0.0.1:3000 REGISTRY_API_KEY=ar_… PORT=4000 node examples/bff-mirror.mjs
//   curl -s localhost:4000/agents          # every agent, from memory
//   curl -s localhost:4000/agents/pmo      # one agent
//   curl -s localhost:4000/state           # every section and the cursor the replica stands at
//
// The replica loads one discovery snapshot, then follows the change stream from its cursor
// (reconnecting and resuming on its own), so each answer here costs the registry nothing.
import http from 'node:http';
import { mirror } from '@agentic-registry/client';

const registry = mirror({
  baseUrl: process.env.REGISTRY_URL ?? 'http://127.0.0.1:3000',
  apiKey: process.env.REGISTRY_API_KEY,
  onStatus: (s) => s.state === 'retrying' && console.error(`change stream: reconnecting in ${s.delayMs} ms (${s.error})`),
});
registry.addEventListener('change', ({ detail }) =>
  console.log(`${detail.event?.seq} ${detail.event?.type}: ${detail.section}/${detail.key}${detail.value ? '' : ' removed'}`),
);
registry.addEventListener('error', ({ detail }) => {
  console.error('the mirror stopped:', detail);
  process.exitCode = 1;
});
await registry.ready;

const SECTIONS = { agents: 'agents', prompts: 'prompts', 'mcp-servers': 'mcp_servers', 'trust-rules': 'trust_rules' };

const server = http.createServer((req, res) => {
  const [, collection, ...rest] = new URL(req.url ?? '/', 'http://bff').pathname.split('/');
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-registry-cursor': String(registry.cursor) });
    res.end(JSON.stringify(body));
  };
  if (req.method !== 'GET') return send(405, { error: 'read-only' });
  if (collection === 'state') return send(200, registry.snapshot());
  const section = SECTIONS[collection];
  if (!section) return send(404, { error: 'unknown path', paths: ['/state', ...Object.keys(SECTIONS).map((s) => `/${s}[/:id]`)] });
  if (rest.length === 0) return send(200, registry.list(section));
  const item = registry.get(section, rest.map(decodeURIComponent).join('/'));
  return item ? send(200, item) : send(404, { error: 'not found' });
});
server.listen(Number(process.env.PORT ?? 4000), '127.0.0.1', () => {
  console.log(`mirroring ${registry.list('agents').length} agents at cursor ${registry.cursor}; serving on http://127.0.0.1:${server.address().port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    registry.close();
    server.close();
  });
}
