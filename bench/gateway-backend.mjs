#!/usr/bin/env node
// The MCP backend of the gateway bench: an SDK-built server over stateful
// Streamable HTTP (a server per MCP session, SSE responses), as a process of
// its own so its CPU is not the bench client's or the gateway's.
//   node bench/gateway-backend.mjs <port>
// Tools: `echo` (answers its `text` at once); `burst` (`count` progress
// notifications as fast as it can, then answers).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { z } from 'zod';

const port = Number(process.argv[2] ?? 0);
const sessions = new Map();

function build() {
  const server = new McpServer({ name: 'gateway-bench-backend', version: '1.0.0' });
  server.registerTool('echo', { description: 'answers its text', inputSchema: { text: z.string().optional() } }, async ({ text }) => ({
    content: [{ type: 'text', text: text ?? 'echo' }],
  }));
  server.registerTool(
    'burst',
    { description: 'sends count progress notifications, then answers', inputSchema: { count: z.number().int().min(1).max(1_000_000) } },
    async ({ count }, extra) => {
      const token = extra._meta?.progressToken;
      if (token !== undefined) {
        for (let i = 1; i <= count; i++) {
          // Not awaited one by one: the transport writes them in order; a pause every 1000 lets the socket drain.
          const sent = extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: count } });
          if (i % 1000 === 0) await sent;
        }
      }
      return { content: [{ type: 'text', text: `sent ${count}` }] };
    },
  );
  return server;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      try {
        resolve(text === '' ? undefined : JSON.parse(text));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

const httpServer = http.createServer(async (req, res) => {
  try {
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (!transport) {
      if (id !== undefined || body?.method !== 'initialize') {
        res.writeHead(404).end();
        return;
      }
      const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => sessions.set(sid, created) });
      created.onclose = () => created.sessionId && sessions.delete(created.sessionId);
      await build().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  } catch (error) {
    if (!res.headersSent) res.writeHead(500).end(String(error));
  }
});
httpServer.keepAliveTimeout = 60_000;
httpServer.listen(port, '127.0.0.1', () => console.log(`listening on ${/** @type {import('node:net').AddressInfo} */ (httpServer.address()).port}`));
