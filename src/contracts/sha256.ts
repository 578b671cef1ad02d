/**
 * SHA-256 (FIPS 180-4) of ASCII text, in JavaScript, for the deterministic ids of ../ids.ts.
 *
 * Why not node:crypto: a signal id is one SHA-256 of ~40 bytes, and with every strategy on the quant makes one per
 * signal (0.9 a bar). Through the native binding (`crypto.hash`, its cheapest form) an id took the joined string
 * (built, then flattened for the call), the call into C++, a 64-digit hex digest, its slice and the prefix: in the
 * engine the ids were a quarter of the in-process time. Here the message is written straight from its parts into
 * the block, one block is compressed (unrolled: ./sha256-compress.ts) and the 20 digits go straight into the id, one
 * flat string: fewer instructions and far fewer strings (measured in docs/quant.md). The general-purpose libraries
 * are slower than the native call for this (bytes in, a digest array out, the hex still to build): @noble/hashes
 * ~5 µs and js-sha256 ~4 µs an id against ~0.9 µs native and ~0.6 µs here, on the same loaded machine.
 *
 * The digest is SHA-256's, bit for bit: test/unit/sha256.test.ts compares it with node:crypto on the FIPS vectors,
 * on every length across the block and padding boundaries and on a seeded sample; ids made here are the ids made
 * before. Text with a character above U+007F is not handled here (the caller falls back to node:crypto, which
 * hashes its UTF-8 bytes): ids are ASCII in practice (tickers, strategy names, ISO timestamps).
 *
 * Use: `begin()`, `put(part)` / `putByte(b)` for each part, then `finishHex(prefix, digits)`; or, for an id of up to
 * four parts joined by '|', `joinedId` (one call). Module-wide state: hashing is synchronous, so one message is in
 * progress at a time.
 */

import * as compressModule from './sha256-compress';

// Bound once, at load: run under tsx (as the workers and benchmarks are), an ES module is compiled to CommonJS whose
// exports are getters, and a call through an import binding reads two of them each time, which V8 does not inline
// (esbuild's shared getter does a megamorphic `from[key]`). These run per block and per id (docs/quant.md).
const { compress: compressBlock, firstWordsOfOneBlock } = compressModule;

// prettier-ignore
const IV = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The block being filled: 16 big-endian words. */
const W = new Int32Array(16);
/** The chaining state. */
const H = new Int32Array(8);
/** Bytes of the message so far. */
let length = 0;

function compress(): void {
  compressBlock(H, W);
}

/** Start a new message. */
export function begin(): void {
  // Element by element: set() and fill() are builtin calls, a few per cent of an id.
  for (let i = 0; i < 8; i++) H[i] = IV[i]!;
  for (let i = 0; i < 16; i++) W[i] = 0;
  length = 0;
}

/** Append one byte (0-255). */
export function putByte(byte: number): void {
  const i = length & 63;
  W[i >> 2]! |= byte << (24 - ((i & 3) << 3));
  if (i === 63) {
    compress();
    W.fill(0);
  }
  length++;
}

/**
 * Append the characters of `s` as bytes. False when one is above U+007F: the message is then abandoned (its bytes
 * are no longer SHA-256's input) and must be begun again.
 */
export function put(s: string): boolean {
  let len = length;
  const n = s.length;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(k);
    if (c > 0x7f) return false;
    const i = len & 63;
    W[i >> 2]! |= c << (24 - ((i & 3) << 3));
    len++;
    if (i === 63) {
      compress();
      W.fill(0);
    }
  }
  length = len;
  return true;
}

/** The hex digits' character codes, by nibble. */
const HEX_CODES = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/**
 * Hex digit of a nibble, as a character code: a table load. The digits of a digest are random, so a conditional
 * (`nibble < 10 ? …`) mispredicted on ~40 % of the 20 digits of each id.
 */
const hex = (nibble: number) => HEX_CODES[nibble]!;

/** Pad the message and compress its last block(s): H is its digest. */
function finish(): void {
  const bits = length * 8;
  putByte(0x80);
  // The bytes after the 0x80 are already zero; the length needs the last 8 bytes of a block.
  if ((length & 63) > 56) {
    compress();
    W.fill(0);
  }
  // The length in bits, a 64-bit big-endian integer in words 14 and 15.
  W[14] = Math.floor(bits / 0x1_0000_0000);
  W[15] = bits >>> 0;
  compress();
}

/** The i-th hex digit of the digest (0 = the most significant of the first word), as a character code. */
function digit(i: number): number {
  return hex((H[i >> 3]! >>> (28 - ((i & 7) << 2))) & 15);
}

/**
 * Finish the message: `prefix` followed by the first `digits` (0-64) hex digits of its digest. A prefix of 4
 * characters with 20 digits (a signal id) is built as one flat string by one call: a concatenation of pieces would
 * be a rope that the first regex test or map lookup flattens into yet another string.
 */
export function finishHex(prefix: string, digits: number): string {
  finish();
  return digestHex(prefix, digits);
}

/** `prefix` and the first `digits` hex digits of H, the finished digest. */
function digestHex(prefix: string, digits: number): string {
  if (prefix.length === 4 && digits === 20) {
    const a = H[0]!;
    const b = H[1]!;
    const c = H[2]!;
    return String.fromCharCode(
      prefix.charCodeAt(0),
      prefix.charCodeAt(1),
      prefix.charCodeAt(2),
      prefix.charCodeAt(3),
      hex(a >>> 28),
      hex((a >>> 24) & 15),
      hex((a >>> 20) & 15),
      hex((a >>> 16) & 15),
      hex((a >>> 12) & 15),
      hex((a >>> 8) & 15),
      hex((a >>> 4) & 15),
      hex(a & 15),
      hex(b >>> 28),
      hex((b >>> 24) & 15),
      hex((b >>> 20) & 15),
      hex((b >>> 16) & 15),
      hex((b >>> 12) & 15),
      hex((b >>> 8) & 15),
      hex((b >>> 4) & 15),
      hex(b & 15),
      hex(c >>> 28),
      hex((c >>> 24) & 15),
      hex((c >>> 20) & 15),
      hex((c >>> 16) & 15),
    );
  }
  let out = prefix;
  for (let i = 0; i < digits; i++) out += String.fromCharCode(digit(i));
  return out;
}

/**
 * `prefix` (4 characters) and the first 20 hex digits of the SHA-256 of `p0|p1|p2|p3` (`p1|p2|p3` when p0 is
 * undefined), or undefined when a part is not ASCII (the caller hashes the text with node:crypto). The ids' whole
 * message in one call: run under tsx every module's exports are getters (esbuild's CommonJS form of an ES module),
 * and a call into another module costs two getter calls that V8 does not inline (the getter's `from[key]` is shared
 * by every export of the module, so its load is megamorphic). Written part by part from ../ids.ts, an id made
 * nine such calls (docs/quant.md).
 */
export function joinedId(
  prefix: string,
  p0: string | undefined,
  p1: string,
  p2: string,
  p3: string,
): string | undefined {
  const total = (p0 === undefined ? 0 : p0.length + 1) + p1.length + 1 + p2.length + 1 + p3.length;
  if (total <= 55) return oneBlockId(prefix, p0, p1, p2, p3, total);
  begin();
  if (p0 !== undefined) {
    if (!put(p0)) return undefined;
    putByte(0x7c); // '|'
  }
  if (!put(p1)) return undefined;
  putByte(0x7c);
  if (!put(p2)) return undefined;
  putByte(0x7c);
  if (!put(p3)) return undefined;
  return finishHex(prefix, 20);
}

/**
 * The message's bytes when it fits one block with its padding (at most 55 bytes: every signal and bar id), written
 * a byte per character and packed into W four at a time. Writing each character into its word (a shift, a load
 * and an OR, the block-end and length bookkeeping per character) took more than the compression itself.
 */
const BYTES = new Uint8Array(64);
/** The OR of the character codes written by `writeAt` since the last id: above 0x7F when one is not ASCII. */
let written = 0;

/** Write `s` into BYTES from `at`; the next position. */
function writeAt(s: string, at: number): number {
  let or = written;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    or |= c;
    BYTES[at + k] = c;
  }
  written = or;
  return at + s.length;
}

/** joinedId's message of `total` (<= 55) bytes: written, padded, packed, one block compressed. */
function oneBlockId(
  prefix: string,
  p0: string | undefined,
  p1: string,
  p2: string,
  p3: string,
  total: number,
): string | undefined {
  const b = BYTES;
  written = 0;
  let at = 0;
  if (p0 !== undefined) {
    at = writeAt(p0, at);
    b[at++] = 0x7c; // '|'
  }
  at = writeAt(p1, at);
  b[at++] = 0x7c;
  at = writeAt(p2, at);
  b[at++] = 0x7c;
  writeAt(p3, at);
  if (written > 0x7f) return undefined;
  b[total] = 0x80;
  for (let i = total + 1; i < 56; i++) b[i] = 0;
  for (let i = 0; i < 14; i++) {
    const o = i << 2;
    W[i] = (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
  }
  W[14] = 0; // the length in bits, a 64-bit big-endian integer: < 2^32 here
  W[15] = total * 8;
  firstWordsOfOneBlock(W, H); // H[0..2]: the 20 digits' words
  return digestHex(prefix, 20);
}

/**
 * The fixed part of a family of joinedId ids, `prefix` and the message's first parts `p0|p1|p2|` (p0 optional),
 * written and packed once: the quant's ids of one strategy on one series differ only in the bar's timestamp, and
 * writing the scope, strategy and symbol into the block again for every signal (a character at a time, then packed)
 * was a large part of an id's cost besides the compression (docs/quant.md). `idFor(p3)` is exactly
 * `joinedId(prefix, p0, p1, p2, p3)` when the message fits one block; test/unit/sha256.test.ts compares the two.
 */
export class JoinedIdPrefix {
  /** Bytes of `p0|p1|p2|`. */
  private readonly length: number;
  /** Are all of them ASCII (else every id of the family goes to node:crypto through the caller)? */
  private readonly ascii: boolean;
  /** The words made of the parts' bytes alone, packed big-endian. */
  private readonly words = new Int32Array(16);
  /** The parts' last `length % 4` bytes (the start of the word they share with p3), as an integer: b0·2^8 + b1… */
  private readonly partial: number;

  constructor(
    readonly prefix: string,
    p0: string | undefined,
    p1: string,
    p2: string,
  ) {
    const text = p0 === undefined ? `${p1}|${p2}|` : `${p0}|${p1}|${p2}|`;
    let or = 0;
    let acc = 0;
    const n = Math.min(text.length, 64);
    for (let k = 0; k < n; k++) {
      const c = text.charCodeAt(k);
      or |= c;
      acc = (acc << 8) | (c & 0xff);
      if ((k & 3) === 3) {
        this.words[k >> 2] = acc;
        acc = 0;
      }
    }
    this.length = text.length;
    this.ascii = or <= 0x7f && prefix.length === 4;
    this.partial = acc;
  }

  /**
   * `prefix` and the first 20 hex digits of the SHA-256 of the parts and `p3`, or undefined when the message does
   * not fit one block (55 bytes) or a character is not ASCII: the caller then takes joinedId's general path.
   */
  idFor(p3: string): string | undefined {
    const len = this.length;
    const n = p3.length;
    const total = len + n;
    if (!this.ascii || total > 55) return undefined;
    const words = this.words;
    let w = len >> 2; // words of the parts alone
    for (let i = 0; i < w; i++) W[i] = words[i]!;
    // p3's characters, a word at a time: the rest of the word the parts began (4 - len % 4 characters, or none),
    // then whole words, then the last characters with the 0x80 that ends the message.
    let k = 0;
    let or = 0;
    const used = len & 3;
    if (used !== 0) {
      let acc = this.partial;
      for (let i = used; i < 4; i++) {
        const c = k < n ? p3.charCodeAt(k) : i === used + n ? 0x80 : 0; // (p3 may be shorter than the gap)
        or |= k < n ? c : 0;
        acc = (acc << 8) | c;
        k++;
      }
      W[w++] = acc;
    }
    for (; k + 4 <= n; k += 4) {
      const c0 = p3.charCodeAt(k);
      const c1 = p3.charCodeAt(k + 1);
      const c2 = p3.charCodeAt(k + 2);
      const c3 = p3.charCodeAt(k + 3);
      or |= c0 | c1 | c2 | c3;
      W[w++] = (c0 << 24) | (c1 << 16) | (c2 << 8) | c3;
    }
    if (k <= n) {
      // 0-3 characters left, then 0x80 (when p3 ended inside the first word, its 0x80 is written there already)
      let acc = 0;
      let i = 0;
      for (; k < n; k++, i++) {
        const c = p3.charCodeAt(k);
        or |= c;
        acc = (acc << 8) | c;
      }
      acc = (acc << 8) | 0x80;
      W[w++] = acc << ((3 - i) << 3);
    }
    if (or > 0x7f) return undefined;
    while (w < 14) W[w++] = 0;
    W[14] = 0;
    W[15] = total * 8;
    firstWordsOfOneBlock(W, H); // H[0..2]: the 20 digits' words
    return digestHex(this.prefix, 20);
  }
}
