// Free ports and waiting for ports, for every test tool: jest's global setup
// (plain Node, so this file is JavaScript), the suites, the multi-replica
// helpers and the chaos suite. Types: ports.d.mts.
import net from 'node:net';

const LOOPBACK = '127.0.0.1';

/** A TCP port nothing listens on right now: the kernel's pick for port 0, released at once. */
export function freePort(host = LOOPBACK) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on host:port now. */
export function portOpen(port, host = LOOPBACK) {
  return new Promise((resolve) => {
    const socket = net.connect(port, host, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** Resolves once host:port accepts connections; rejects after `timeoutMs`. */
export async function waitForPort(port, timeoutMs, host = LOOPBACK) {
  const until = Date.now() + timeoutMs;
  while (!(await portOpen(port, host))) {
    if (Date.now() > until) throw new Error(`port ${port} did not open in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
