#!/usr/bin/env node
// The gateway bench's bare hop: the least a process between a client and the
// backend can do (node:http in, node:http out on a keep-alive connection, the
// bodies piped as they come, nothing parsed, stored or checked). Calls through
// it show what one more HTTP hop costs on the machine, the part of a gateway's
// overhead no code of the gateway can remove.
//   node bench/hop-proxy.mjs <port> <backend port>
import http from 'node:http';

const [port, backendPort] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true });
http
  .createServer((req, res) => {
    const out = http.request({ host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  })
  .listen(port, '127.0.0.1');
