import { decodeText } from "./protocol.ts";

/**
 * The texts a connection used last (object ids it opened, lease ids it was
 * granted), to decode the same bytes again to the same string. A string new
 * to V8 is hashed the first time it keys a map, which costs more than
 * comparing a few short strings: a reader that opens one object over and
 * over, and releases each lease it was just granted, sends no new string.
 */
export class RecentTexts {
  readonly #texts: string[];
  #next = 0;

  /** @param size How many texts to keep. */
  constructor(size: number) {
    this.#texts = new Array<string>(size).fill("");
  }

  /** Keeps `text` among the recent ones. */
  add(text: string): void {
    this.#texts[this.#next] = text;
    this.#next = (this.#next + 1) % this.#texts.length;
  }

  /**
   * Decodes a UTF-8 body: a recent text when the bytes spell one, else a
   * new string, which then counts as recent.
   *
   * @throws {ProtocolError} When it is not UTF-8.
   */
  decode(bytes: Uint8Array): string {
    for (const text of this.#texts) {
      if (spells(bytes, text)) return text;
    }
    const text = decodeText(bytes);
    this.add(text);
    return text;
  }
}

/** Whether `bytes` are `text`, an ASCII one. */
function spells(bytes: Uint8Array, text: string): boolean {
  if (bytes.length !== text.length || text.length === 0) return false;
  for (let i = 0; i < bytes.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80 || bytes[i] !== code) return false;
  }
  return true;
}
