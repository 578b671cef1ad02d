import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignalIdPrefix, barMessageId, shortHash, signalIdFor } from '../../src/contracts/ids';
import * as sha256 from '../../src/contracts/sha256';
import { TradeSignalSchema } from '../../src/contracts/signal';
import { SeededRandom } from '../../src/domain/random';

const nodeHex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** The JavaScript SHA-256 of an ASCII string, all 64 digits. */
function jsHex(s: string): string {
  sha256.begin();
  if (!sha256.put(s)) throw new Error('not ASCII');
  return sha256.finishHex('', 64);
}

describe('JavaScript SHA-256 (src/contracts/sha256.ts) is SHA-256', () => {
  it('FIPS 180-4 / NIST example vectors', () => {
    expect(jsHex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(jsHex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(jsHex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('every length from 0 to 300 bytes (one, two and more blocks; every padding case) matches node:crypto', () => {
    const rnd = new SeededRandom(20261129);
    for (let n = 0; n <= 300; n++) {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(rnd.next() * 128));
      expect(jsHex(s), `length ${n}`).toBe(nodeHex(s));
    }
  });

  it('a message written in parts is the message joined', () => {
    sha256.begin();
    expect(sha256.put('sma-cross')).toBe(true);
    sha256.putByte(0x7c);
    expect(sha256.put('NVDA')).toBe(true);
    expect(sha256.finishHex('sig-', 20)).toBe(`sig-${nodeHex('sma-cross|NVDA').slice(0, 20)}`);
  });

  it('finishHex gives any number of digits after any prefix', () => {
    const full = nodeHex('ES|2006-01-03T00:00:00.000Z');
    for (const digits of [0, 1, 7, 8, 9, 20, 63, 64]) {
      for (const prefix of ['', 'sig-', 'bar-', 'x']) {
        sha256.begin();
        sha256.put('ES|2006-01-03T00:00:00.000Z');
        expect(sha256.finishHex(prefix, digits)).toBe(prefix + full.slice(0, digits));
      }
    }
  });

  it('put refuses text above U+007F (the caller hashes it with node:crypto)', () => {
    sha256.begin();
    expect(sha256.put('Zürich')).toBe(false);
  });
});

describe('signalIdFor: the ids made before, the SHA-256 of the joined text', () => {
  const legacy = (strategy: string, symbol: string, ts: string, scope?: string) =>
    `sig-${nodeHex(scope === undefined ? `${strategy}|${symbol}|${ts}` : `${scope}|${strategy}|${symbol}|${ts}`).slice(0, 20)}`;

  it('on a seeded sample of strategies, symbols, timestamps and scopes (short and long, ASCII and not)', () => {
    const rnd = new SeededRandom(7);
    const strategies = ['sma-cross', 'ema-cross', 'macd', 'bollinger', 'rsi', 'momentum', 'mrm', 'ml', 'ensemble'];
    const symbols = ['NVDA', 'ORCL', 'ES', 'BRK.B', 'A', 'Ünicode', '株'];
    const scopes = [undefined, 'paper-acct', 'run-2026-11-29T15:00:00.000Z-0123456789abcdef0123456789abcdef', 'é'];
    for (let i = 0; i < 2000; i++) {
      const strategy = strategies[Math.floor(rnd.next() * strategies.length)]!;
      const symbol = symbols[Math.floor(rnd.next() * symbols.length)]!;
      const scope = scopes[Math.floor(rnd.next() * scopes.length)];
      const ts = new Date(Math.floor(rnd.next() * 2e12)).toISOString();
      expect(signalIdFor(strategy, symbol, ts, scope)).toBe(legacy(strategy, symbol, ts, scope));
    }
  });

  it('joinedId on every message length up to 120 bytes, parts of every size, with and without p0 (the one-block path up to 55 bytes, the general one beyond) matches node:crypto', () => {
    const rnd = new SeededRandom(3);
    const text = (n: number) =>
      Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(rnd.next() * 95))).join('');
    for (let total = 3; total <= 120; total++) {
      for (const withP0 of [false, true]) {
        const seps = withP0 ? 3 : 2;
        if (total < seps) continue;
        for (let k = 0; k < 6; k++) {
          // split total - seps characters over the parts at random
          let left = total - seps;
          const parts: string[] = [];
          for (let i = 0; i < seps; i++) {
            const n = Math.floor(rnd.next() * (left + 1));
            parts.push(text(n));
            left -= n;
          }
          parts.push(text(left));
          const [a, b, c, d] = withP0 ? parts : [undefined, ...parts];
          const joined = [a, b, c, d].filter((x) => x !== undefined).join('|');
          expect(joined.length).toBe(total);
          expect(sha256.joinedId('sig-', a, b!, c!, d!), `length ${total}`).toBe(`sig-${nodeHex(joined).slice(0, 20)}`);
        }
      }
    }
    // a non-ASCII character in any part, on either path: undefined (the caller hashes the UTF-8 bytes)
    expect(sha256.joinedId('sig-', undefined, 'ml', 'é', 'x')).toBeUndefined();
    expect(sha256.joinedId('sig-', 'é', 'ml', 'A', 'x')).toBeUndefined();
    expect(sha256.joinedId('sig-', 'a', 'ml', 'A', 'x'.repeat(60) + '株')).toBeUndefined();
    // and the next id after a refused one is right again
    expect(sha256.joinedId('sig-', undefined, 'ml', 'A', 'x')).toBe(`sig-${nodeHex('ml|A|x').slice(0, 20)}`);
  });

  it('JoinedIdPrefix.idFor is joinedId with the first parts fixed: every length up to 120 bytes, every alignment, with and without p0; undefined beyond one block or for non-ASCII', () => {
    const rnd = new SeededRandom(11);
    const text = (n: number) =>
      Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(rnd.next() * 95))).join('');
    let oneBlock = 0;
    for (let total = 3; total <= 120; total++) {
      for (const withP0 of [false, true]) {
        const seps = withP0 ? 3 : 2;
        if (total < seps) continue;
        for (let k = 0; k < 6; k++) {
          let left = total - seps;
          const parts: string[] = [];
          for (let i = 0; i < seps; i++) {
            const n = Math.floor(rnd.next() * (left + 1));
            parts.push(text(n));
            left -= n;
          }
          parts.push(text(left));
          const [a, b, c, d] = withP0 ? parts : [undefined, ...parts];
          const fixed = new sha256.JoinedIdPrefix('sig-', a, b!, c!);
          const id = fixed.idFor(d!);
          if (total <= 55) {
            oneBlock++;
            const joined = [a, b, c, d].filter((x) => x !== undefined).join('|');
            expect(id, `length ${total}`).toBe(`sig-${nodeHex(joined).slice(0, 20)}`);
            expect(id).toBe(sha256.joinedId('sig-', a, b!, c!, d!));
            // the same family again, after another message was hashed (the module's block is shared)
            sha256.joinedId('bar-', 'x', 'y', 'z', text(30));
            expect(fixed.idFor(d!)).toBe(id);
          } else expect(id).toBeUndefined();
        }
      }
    }
    expect(oneBlock).toBeGreaterThan(500);
    expect(new sha256.JoinedIdPrefix('sig-', undefined, 'ml', 'é').idFor('x')).toBeUndefined();
    expect(new sha256.JoinedIdPrefix('sig-', 'é', 'ml', 'A').idFor('x')).toBeUndefined();
    expect(new sha256.JoinedIdPrefix('sig-', undefined, 'ml', 'A').idFor('株')).toBeUndefined();
    expect(new sha256.JoinedIdPrefix('sig-', undefined, 'ml', 'A').idFor('x')).toBe(
      `sig-${nodeHex('ml|A|x').slice(0, 20)}`,
    );
  });

  it("SignalIdPrefix gives signalIdFor's ids, scoped and unscoped, one block, two blocks and non-ASCII alike", () => {
    const stamps = ['2026-11-29T15:00:00.000Z', '1999-01-22T00:00:00.000Z', '2006-01-02T09:01:00Z'];
    const cases: [string, string, string | undefined][] = [
      ['sma-cross', 'NVDA', undefined],
      ['ensemble', 'ES', 'acct-7'],
      ['ml', 'BRK.B', 'paper-0123456789abcdef0123456789abcdef'],
      ['macd', 'ÄPFEL', undefined],
    ];
    for (const [strategy, symbol, scope] of cases) {
      const ids = new SignalIdPrefix(strategy, symbol, scope);
      for (const ts of stamps) expect(ids.idFor(ts)).toBe(signalIdFor(strategy, symbol, ts, scope));
      expect(ids.idFor('2026-11-29T15:00:00.000Z-ü')).toBe(
        signalIdFor(strategy, symbol, '2026-11-29T15:00:00.000Z-ü', scope),
      );
    }
  });

  it('pinned ids across two blocks and through the non-ASCII fallback (test/unit/strategies/signal.test.ts pins one block)', () => {
    const long = 'run-2026-11-29T15:00:00.000Z-0123456789abcdef0123456789abcdef';
    expect(signalIdFor('ensemble', 'ES', '2006-01-03T14:31:00.000Z', long)).toBe('sig-4d3b74e0f3b4bb3cdcd3');
    expect(signalIdFor('ml', '株', '2006-01-03T14:31:00.000Z', 'é')).toBe('sig-a3d88025697d8c252785');
    expect(shortHash('sma-cross', 'NVDA', '1999-01-22T00:00:00.000Z')).toBe(
      signalIdFor('sma-cross', 'NVDA', '1999-01-22T00:00:00.000Z').slice(4),
    );
  });

  it("every id is inside the signal contract's id pattern (toTradeSignal does not test it again)", () => {
    const idSchema = TradeSignalSchema.shape.signal_id;
    for (const [strategy, symbol, ts, scope] of [
      ['sma-cross', 'NVDA', '1999-01-22T00:00:00.000Z', undefined],
      ['', '', '', ''],
      ['ml', '株', 'not a date', 'é'],
      ['x'.repeat(500), 'Y'.repeat(500), 'z', 's'.repeat(1000)],
    ] as const) {
      expect(idSchema.safeParse(signalIdFor(strategy, symbol, ts, scope)).success).toBe(true);
    }
  });
});

describe('barMessageId: the ids made before, bar- and shortHash of its parts', () => {
  it('on a seeded sample of sources, symbols, intervals and timestamps (ASCII and not)', () => {
    const rnd = new SeededRandom(11);
    const sources = ['replay', 'polygon', 'synthetic', 'bench', 'sourcé'];
    const symbols = ['NVDA', 'ORCL', 'ES', 'BRK.B', '株'];
    const intervals = ['1m', '5m', '1d', '1w'];
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd.next() * xs.length)]!;
    for (let i = 0; i < 2000; i++) {
      const [source, symbol, interval] = [pick(sources), pick(symbols), pick(intervals)];
      const ts = new Date(Math.floor(rnd.next() * 2e12)).toISOString();
      expect(barMessageId(source, symbol, interval, ts)).toBe(`bar-${shortHash(source, symbol, interval, ts)}`);
    }
    expect(barMessageId('replay', 'NVDA', '1d', '1999-01-22T00:00:00.000Z')).toBe(
      `bar-${nodeHex('replay|NVDA|1d|1999-01-22T00:00:00.000Z').slice(0, 20)}`,
    );
  });
});
