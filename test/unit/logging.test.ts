import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, withCorrelation } from '../../src/logging';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, destination, json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logging', () => {
  it('writes one JSON object per line with timestamp, level word, service, message and correlation_id', () => {
    const c = capture();
    const log = createLogger('risk', { level: 'info', destination: c.destination });
    withCorrelation(log, 'corr-42').info({ symbol: 'NVDA' }, 'trade approved');
    const [line] = c.json();
    expect(line).toMatchObject({
      level: 'info',
      service: 'risk',
      message: 'trade approved',
      correlation_id: 'corr-42',
      symbol: 'NVDA',
    });
    expect(String(line!.timestamp)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('redacts secrets by key, in nested headers, and inside URLs and messages', () => {
    const c = capture();
    const log = createLogger('exec', { level: 'info', destination: c.destination });
    log.info(
      {
        password: 'hunter2-very-secret',
        config: { BROKER_API_SECRET: 'sk-live-123456', apiKey: 'pk-abc' },
        request: { headers: { Authorization: 'Bearer abc.def', 'APCA-API-SECRET-KEY': 'alpaca-secret' } },
      },
      'connecting to amqp://sat:rabbit-pass@127.0.0.1:5672/vhost?apiKey=polygon-key',
    );
    log.error({ err: new Error('connect failed: postgres://sat:pg-pass@db:5432/x') }, 'db down');
    const text = c.lines.join('\n');
    for (const secret of [
      'hunter2-very-secret',
      'sk-live-123456',
      'pk-abc',
      'abc.def',
      'alpaca-secret',
      'rabbit-pass',
      'polygon-key',
      'pg-pass',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('[Redacted]');
  });
});
