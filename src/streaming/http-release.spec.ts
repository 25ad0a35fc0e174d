import http from 'node:http';
import net from 'node:net';
import { releaseHttpState, releaseSoon } from './http-release.js';

type HttpSocket = net.Socket & { parser?: unknown; _httpMessage?: unknown };

/** A bare HTTP server that hands every request's socket to `onSocket` (as a hijacking handler does). */
async function serve(onSocket: (socket: net.Socket) => void) {
  const server = http.createServer((req) => onSocket(req.socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { server, port };
}

function request(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  return socket;
}

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('releaseHttpState', () => {
  it('frees the parser and the response, and takes the socket out of the server connection list', async () => {
    let socket: HttpSocket | undefined;
    let released: boolean | undefined;
    const { server, port } = await serve((s) => {
      socket = s;
      // Never from inside the parser's callback (see releaseSoon).
      setImmediate(() => (released = releaseHttpState(s)));
    });
    const client = request(port);
    try {
      await until(() => released !== undefined);
      expect(released).toBe(true);
      expect(socket!.parser).toBeNull();
      expect(socket!._httpMessage).toBeNull();
      expect(socket!.listenerCount('data')).toBe(0);
      expect(socket!.listenerCount('end')).toBe(0);
      // The server no longer knows the connection: closing all of its connections leaves it open.
      server.closeAllConnections();
      await new Promise((r) => setTimeout(r, 50));
      expect(socket!.destroyed).toBe(false);
    } finally {
      client.destroy();
      socket?.destroy();
      server.close();
    }
  });

  it('changes nothing on a socket that is not a parsed HTTP/1 connection', async () => {
    const server = net.createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      await new Promise((r) => socket.once('connect', r));
      const onData = () => undefined;
      socket.on('data', onData);
      expect(releaseHttpState(socket)).toBe(false);
      expect(socket.listeners('data')).toEqual([onData]);
    } finally {
      socket.destroy();
      server.close();
    }
  });
});

describe('releaseSoon', () => {
  it('releases on the next turn, has the owner listen again, and the socket still hears the client leave', async () => {
    let socket: HttpSocket | undefined;
    let ended = false;
    const adopt = (s: net.Socket) => s.on('end', () => (ended = true));
    const { server, port } = await serve((s) => {
      socket = s;
      releaseSoon(s, () => true, adopt);
      expect((s as HttpSocket).parser).not.toBeNull(); // not inside the parser's callback
    });
    const client = request(port);
    try {
      await until(() => socket?.parser === null);
      expect(socket!.parser).toBeNull();
      expect(socket!.listenerCount('end')).toBe(1);
      client.end();
      await until(() => ended);
      expect(ended).toBe(true);
    } finally {
      client.destroy();
      socket?.destroy();
      server.close();
    }
  });

  it('leaves a socket alone when its owner no longer wants it by then', async () => {
    let socket: HttpSocket | undefined;
    let adopted = false;
    const { server, port } = await serve((s) => {
      socket = s;
      releaseSoon(
        s,
        () => false,
        () => (adopted = true),
      );
    });
    const client = request(port);
    try {
      await until(() => socket !== undefined);
      await new Promise((r) => setTimeout(r, 50));
      expect(socket!.parser).not.toBeNull();
      expect(adopted).toBe(false);
    } finally {
      client.destroy();
      socket?.destroy();
      server.close();
    }
  });
});
