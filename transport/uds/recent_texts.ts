import { decodeText } from "./protocol.ts";

/**
 * The texts a connection used last (object ids it opened, lease ids it was
 * granted), to decode the same bytes again to the same string. A string new
 * to V8 is hashed the first time it keys a map, which costs more than
 * comparing a few short strings: a reader that opens one object over and
 * over, and releases each lease it was just granted, sends no new string.
 *
 * A direct-mapped table, not a list to scan: a client with many gets in
 * flight releases each lease after the grants of the others, more than a
 * short list would still hold, and a lookup costs the same however many are
 * kept. Only ASCII texts are kept: others are never spelled by their bytes.
 */
export class RecentTexts {
  readonly #slots: string[];
  readonly #mask: number;

  /** @param size How many slots to keep texts in: a power of two. */
  constructor(size: number) {
    if (size < 1 || (size & (size - 1)) !== 0) {
      throw new RangeError(`Cannot keep recent texts: size must be a power of two, not ${size}`);
    }
    this.#slots = new Array<string>(size).fill("");
    this.#mask = size - 1;
  }

  /** Keeps `text` among the recent ones, in place of the one in its slot. */
  add(text: string): void {
    const hash = textHash(text);
    if (hash >= 0) this.#slots[hash & this.#mask] = text;
  }

  /**
   * Decodes a UTF-8 body, from byte `from` to its end: a recent text when
   * the bytes spell one, else a new string, which then counts as recent.
   *
   * @throws {ProtocolError} When it is not UTF-8.
   */
  decode(bytes: Uint8Array, from = 0): string {
    const known = this.#slots[bytesHash(bytes, from) & this.#mask]!;
    if (spells(bytes, from, known)) return known;
    const text = decodeText(from === 0 ? bytes : bytes.subarray(from));
    this.add(text);
    return text;
  }
}

/** How many bytes at each end of a text its hash reads: ids differ at their start or end. */
const ENDS = 8;

/**
 * A hash of the bytes, the same as {@link textHash} of the ASCII text they
 * spell: the length and up to {@link ENDS} bytes at each end.
 */
function bytesHash(bytes: Uint8Array, from: number): number {
  const end = bytes.length;
  let hash = end - from;
  const head = Math.min(from + ENDS, end);
  for (let i = from; i < head; i++) hash = Math.imul(hash ^ bytes[i]!, 0x9e3779b1);
  for (let i = Math.max(head, end - ENDS); i < end; i++) {
    hash = Math.imul(hash ^ bytes[i]!, 0x9e3779b1);
  }
  return (hash ^ (hash >>> 15)) & 0x7fffffff;
}

/** {@link bytesHash} of the text's bytes; -1 when it is not ASCII. */
function textHash(text: string): number {
  const length = text.length;
  for (let i = 0; i < length; i++) if (text.charCodeAt(i) >= 0x80) return -1;
  let hash = length;
  const head = Math.min(ENDS, length);
  for (let i = 0; i < head; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x9e3779b1);
  for (let i = Math.max(head, length - ENDS); i < length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x9e3779b1);
  }
  return (hash ^ (hash >>> 15)) & 0x7fffffff;
}

/** Whether `bytes` from `from` on are `text`, an ASCII one. */
function spells(bytes: Uint8Array, from: number, text: string): boolean {
  const length = text.length;
  if (bytes.length - from !== length || length === 0) return false;
  for (let i = 0; i < length; i++) {
    if (bytes[from + i] !== text.charCodeAt(i)) return false;
  }
  return true;
}
