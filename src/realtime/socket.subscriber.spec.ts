import { createRequire } from 'node:module';
import { toHubEvent } from '../streaming/event-window.js';
import { SOCKET_CODEC, SocketSubscriber, webSocketFrame } from './socket.subscriber.js';

/** ws's frame parser (exported by ws, not declared by @types/ws). */
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean }) => { on(event: string, listener: (...args: never[]) => void): void; write(chunk: Buffer): void };
};

/** Parses server-to-client bytes with ws's own frame parser (what a Node Socket.IO client runs): the text messages in them. */
function parse(bytes: Buffer): string[] {
  const messages: string[] = [];
  const receiver = new Receiver({ isServer: false });
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    expect(isBinary).toBe(false);
    messages.push(data.toString());
  });
  receiver.on('error', (error: Error) => {
    throw error;
  });
  receiver.write(bytes);
  return messages;
}

describe('Socket.IO frames written by the hub', () => {
  it('frames a packet as a WebSocket text message carrying engine.io "4", at every length encoding', () => {
    for (const size of [0, 10, 124, 125, 126, 200, 65_534, 65_535, 65_536, 70_000]) {
      const packet = `2["event",${JSON.stringify({ s: 'é'.repeat(Math.floor(size / 4)) + 'x'.repeat(size % 4) })}]`;
      expect(parse(webSocketFrame(packet))).toEqual([`4${packet}`]);
    }
  });

  it('writes a batch as one buffer of frames that a client reads as one message per event, in order', () => {
    const events = [1, 2, 3].map((seq) =>
      toHubEvent({ seq, type: 'agent.updated', resource: 'agent', json: `{"seq":${seq},"data":"${'d'.repeat(seq * 100)}"}` }),
    );
    const payload = SOCKET_CODEC.events(events);
    const socket = { conn: fakeConn() };
    // The frames are built once per payload, on the first WebSocket write, and shared by every socket.
    expect(payload.frames).toBeUndefined();
    const sub = new SocketSubscriber(socket as never, undefined as never, 1 << 20, () => undefined);
    sub.write(payload);
    expect(socket.conn.written).toHaveLength(1);
    const [one] = socket.conn.written;
    expect(one.options?.wsPreEncodedFrame?.[0]).toBe(payload.frames);
    expect(parse(payload.frames!)).toEqual(events.map((e) => `42["event",${e.json}]`));
  });

  it('writes each packet on its own where engine.io would not send a pre-framed one (long-polling)', () => {
    const events = [1, 2].map((seq) => toHubEvent({ seq, type: 'agent.updated', resource: 'agent', json: `{"seq":${seq}}` }));
    const socket = { conn: fakeConn('polling') };
    new SocketSubscriber(socket as never, undefined as never, 1 << 20, () => undefined).write(SOCKET_CODEC.events(events));
    expect(socket.conn.written.map((w) => [w.data, w.options])).toEqual([
      ['2["event",{"seq":1}]', undefined],
      ['2["event",{"seq":2}]', undefined],
    ]);
  });
});

/** An engine.io connection as far as SocketSubscriber.write uses it, recording its writes. */
function fakeConn(transport: 'websocket' | 'polling' = 'websocket') {
  const written: { data: string; options?: { wsPreEncodedFrame?: Buffer[] } }[] = [];
  return {
    readyState: 'open',
    writeBuffer: [],
    transport: { name: transport, writable: true, socket: transport === 'websocket' ? { _sender: { sendFrame: () => undefined } } : undefined },
    written,
    write(data: string, options?: { wsPreEncodedFrame?: Buffer[] }) {
      written.push({ data, options });
    },
  };
}
