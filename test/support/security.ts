import net from 'node:net';
import pg from 'pg';
import { api } from './test-env.js';

/** Runs one SQL statement against a test database (direct, as an operator or an attacker with DB access would). */
export async function query<T = any>(databaseUrl: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Creates a user (admin key) and logs in; returns the `ar_session=…` cookie pair. */
export async function loginAs(
  baseUrl: string,
  adminKey: string,
  username: string,
  role: 'viewer' | 'editor' | 'admin',
  password = 'a long enough password',
): Promise<{ cookie: string; id: string }> {
  const made = await api(baseUrl, 'POST', '/api/v1/users', { key: adminKey, body: { username, password, role } });
  if (made.status !== 201) throw new Error(`creating ${username}: ${made.status} ${made.text}`);
  return { cookie: await login(baseUrl, username, password), id: made.body.id };
}

export async function login(baseUrl: string, username: string, password = 'a long enough password', headers: Record<string, string> = {}): Promise<string> {
  const res = await api(baseUrl, 'POST', '/api/v1/auth/login', { body: { username, password }, headers });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${res.text}`);
  return res.headers.get('set-cookie')!.split(';')[0];
}

/**
 * Sends raw bytes on a fresh TCP connection and returns what comes back until
 * the server closes it or `timeoutMs` passes (for requests fetch() refuses to
 * send: bad request lines, huge headers, partial bodies).
 */
export function rawRequest(baseUrl: string, chunks: (string | Buffer)[], timeoutMs = 3000): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let text = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, timeoutMs);
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
    });
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (complete(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ text, closed });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
  });
}

/** Whether `text` holds one whole response with a Content-Length body. */
function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end + 2));
  return length !== null && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1]);
}

/** Status and parsed body of a raw HTTP/1.1 response text. */
export function parseRaw(text: string): { status: number; headers: Record<string, string>; body: any } {
  const [head, ...rest] = text.split('\r\n\r\n');
  const lines = (head ?? '').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let bodyText = rest.join('\r\n\r\n');
  if (headers['transfer-encoding'] === 'chunked') {
    let out = '';
    for (;;) {
      const nl = bodyText.indexOf('\r\n');
      const size = parseInt(bodyText.slice(0, nl), 16);
      if (!size) break;
      out += bodyText.slice(nl + 2, nl + 2 + size);
      bodyText = bodyText.slice(nl + 2 + size + 2);
    }
    bodyText = out;
  }
  let body: any = bodyText;
  try {
    body = JSON.parse(bodyText);
  } catch {
    // not JSON
  }
  return { status, headers, body };
}
