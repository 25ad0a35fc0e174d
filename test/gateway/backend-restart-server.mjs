// A real SDK-built MCP server (stateful Streamable HTTP, SSE responses, the standalone GET stream) for
// test/gateway/backend-restart.e2e-spec.ts, run as its own process so the test can kill it and start it
// again on the same port: the new process knows none of the old sessions (404, as the spec says).
// Tools: `echo` ({text}) and `wait` (answers after `ms`, default never). It prints `listening <port>` once
// ready, and `call <tool>` when a call starts. PORT is the port; it listens on 127.0.0.1 only.
// STANDALONE_STREAM=off: no standalone GET stream (405, as the spec allows), so a client holding a session has no
// connection open to it between calls and cannot see it restart.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const port = Number(process.env.PORT);
const standaloneStream = process.env.STANDALONE_STREAM !== 'off';
const transports = new Map();

function build() {
  const server = new McpServer({ name: 'restartable', version: '1.0.0' });
  server.registerTool('echo', { description: 'echoes text', inputSchema: { text: z.string().optional() } }, async ({ text }) => {
    console.log('call echo');
    return { content: [{ type: 'text', text: `echo ${text ?? ''}` }] };
  });
  server.registerTool('wait', { description: 'answers after ms (default never)', inputSchema: { ms: z.number().int().optional() } }, async ({ ms }, extra) => {
    console.log('call wait');
    await new Promise((resolve) => {
      if (ms !== undefined) setTimeout(resolve, ms);
      extra.signal.addEventListener('abort', resolve, { once: true });
    });
    return { content: [{ type: 'text', text: 'waited' }] };
  });
  return server;
}

function notFound(res) {
  res
    .writeHead(404, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
}

const httpServer = http.createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    if (req.method === 'GET' && !standaloneStream) return res.writeHead(405, { allow: 'POST, DELETE' }).end();
    if (typeof sessionId === 'string') {
      const transport = transports.get(sessionId);
      if (!transport) return notFound(res);
      return await transport.handleRequest(req, res, body);
    }
    if (req.method === 'POST' && isInitializeRequest(body)) {
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
      await build().connect(transport);
      return await transport.handleRequest(req, res, body);
    }
    res.writeHead(400).end('no session');
  } catch (error) {
    if (!res.headersSent) res.writeHead(500).end(String(error));
  }
});
httpServer.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
