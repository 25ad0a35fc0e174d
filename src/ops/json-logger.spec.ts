import { Writable } from 'node:stream';
import { JsonLogger, scrub } from './json-logger.js';
import { requestContext } from './request-context.js';

function capture() {
  const lines: Record<string, any>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, out };
}

describe('JsonLogger', () => {
  it('scrubs API keys, bearer tokens, cookies, passwords and URL credentials from messages', () => {
    const key = 'ar_k3y_0123456789abcdefABCDEF';
    const text = scrub(
      `auth failed for ${key}; Authorization: Bearer abc.def.ghi; cookie=ar_session=s3ss10n; {"password":"hunter22"} postgres://user:pa55@db:5432/x?api_key=qu3ry`,
    );
    for (const secret of [key, 'abc.def.ghi', 's3ss10n', 'hunter22', 'pa55', 'qu3ry']) expect(text).not.toContain(secret);
    expect(text).toContain('ar_[redacted]');
  });

  it('writes JSON lines with replica, context and the request id of the request being handled', async () => {
    const { lines, out } = capture();
    const logger = new JsonLogger({ logLevel: 'debug', replicaId: 'r-1', logFormat: 'json' }, out);
    logger.log('outside any request', 'Boot');
    await requestContext.run({ requestId: 'req-42' }, async () => {
      await new Promise((r) => setTimeout(r, 5)); // across an await
      logger.warn('inside a request', 'Auth');
    });
    logger.error(new Error('boom with ar_secretsecretsecret123'), 'Errors');
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject({ replica: 'r-1', context: 'Boot', msg: 'outside any request', level: 'info' });
    expect(lines[0].requestId).toBeUndefined();
    expect(lines[1]).toMatchObject({ context: 'Auth', msg: 'inside a request', level: 'warn', requestId: 'req-42' });
    expect(lines[2].level).toBe('error');
    expect(JSON.stringify(lines[2])).not.toContain('ar_secretsecretsecret123');
  });

  it('redacts secret fields of structured entries', async () => {
    const { lines, out } = capture();
    const logger = new JsonLogger({ logLevel: 'info', replicaId: 'r-1', logFormat: 'json' }, out);
    logger.log({ msg: 'login', password: 'pw-in-a-field', headers: { authorization: 'Bearer tok', cookie: 'ar_session=abc' } });
    await new Promise((r) => setImmediate(r));
    const text = JSON.stringify(lines);
    expect(text).not.toContain('pw-in-a-field');
    expect(text).not.toContain('Bearer tok');
    expect(text).not.toContain('ar_session=abc');
  });

  it('honours the level', async () => {
    const { lines, out } = capture();
    const logger = new JsonLogger({ logLevel: 'warn', replicaId: 'r-1', logFormat: 'json' }, out);
    logger.log('dropped');
    logger.debug('dropped too');
    logger.warn('kept');
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => l.msg)).toEqual(['kept']);
  });
});
