/**
 * RESP2, the Redis wire protocol, as this backend speaks it: commands are
 * encoded straight into one growing buffer (no per-command arrays or
 * buffers), and replies are parsed in place from the bytes read, each string
 * decoded once from its bytes.
 *
 * @module
 */

/** An error reply of Redis (`-ERR ...`, `-NOSCRIPT ...`): the message is Redis's own. */
export class ErrorReply extends Error {
  /** @param message The error line Redis sent, without the leading `-`. */
  constructor(message: string) {
    super(message);
    this.name = "ErrorReply";
  }
}

/** A reply: a simple or bulk string, an integer, nil, an array of replies, or an error inside an array. */
export type RespValue = string | number | null | ErrorReply | RespValue[];

const CR = 13;
const LF = 10;
const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** Commands written one after the other into one buffer that grows as needed and is reused. */
export class CommandBuffer {
  #bytes = new Uint8Array(16 * 1024);
  #length = 0;

  /** How many bytes are waiting. */
  get length(): number {
    return this.#length;
  }

  /** The bytes written so far; valid until the next call. */
  view(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  /** Forgets the bytes written, keeping the memory. */
  clear(): void {
    this.#length = 0;
  }

  /** Appends one command: `*<n>` then each argument as a bulk string. */
  push(args: readonly string[]): void {
    this.#header(42, /* * */ args.length);
    for (let i = 0; i < args.length; i++) this.#bulk(args[i]!);
  }

  /** Appends `command body numkeys ...keys ...args`, as EVAL and EVALSHA take them. */
  pushScript(
    command: string,
    body: string,
    keys: readonly string[],
    args: readonly string[],
  ): void {
    this.#header(42, /* * */ 3 + keys.length + args.length);
    this.#bulk(command);
    this.#bulk(body);
    this.#bulk(String(keys.length));
    for (let i = 0; i < keys.length; i++) this.#bulk(keys[i]!);
    for (let i = 0; i < args.length; i++) this.#bulk(args[i]!);
  }

  /** `$<bytes>\r\n<bytes>\r\n`: ASCII is copied char by char, anything else through encodeInto. */
  #bulk(text: string): void {
    const chars = text.length;
    this.#header(36, /* $ */ chars);
    this.#reserve(chars + 2);
    const bytes = this.#bytes;
    const start = this.#length;
    let i = 0;
    for (; i < chars; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) break;
      bytes[start + i] = code;
    }
    if (i === chars) {
      this.#length = start + chars;
    } else {
      this.#length -= digits(chars) + 3;
      this.#bulkUtf8(text);
      return;
    }
    this.#crlf();
  }

  #bulkUtf8(text: string): void {
    const encoded = encoder.encode(text);
    this.#header(36, /* $ */ encoded.length);
    this.#reserve(encoded.length + 2);
    this.#bytes.set(encoded, this.#length);
    this.#length += encoded.length;
    this.#crlf();
  }

  #header(kind: number, count: number): void {
    this.#reserve(24);
    const bytes = this.#bytes;
    bytes[this.#length++] = kind;
    const end = this.#length + digits(count);
    for (let at = end - 1; at >= this.#length; at--) {
      bytes[at] = 48 + (count % 10);
      count = Math.floor(count / 10);
    }
    this.#length = end;
    this.#crlf();
  }

  #crlf(): void {
    this.#bytes[this.#length++] = CR;
    this.#bytes[this.#length++] = LF;
  }

  #reserve(more: number): void {
    if (this.#length + more <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < this.#length + more) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }
}

function digits(count: number): number {
  let n = 1;
  while (count >= 10) {
    count = Math.floor(count / 10);
    n++;
  }
  return n;
}

/** What {@link ReplyParser.next} gives while the bytes of a whole reply have not all arrived. */
export const INCOMPLETE: unique symbol = Symbol("incomplete");

/**
 * Replies parsed from the bytes read, in place: bytes are appended with
 * {@link ReplyParser.feed}, and each whole reply is taken with
 * {@link ReplyParser.next}. A reply split over reads is parsed again from its
 * start once more bytes came, which only a large reply meets.
 */
export class ReplyParser {
  #bytes = new Uint8Array(64 * 1024);
  /** Where the next reply starts. */
  #start = 0;
  /** Where the bytes read end. */
  #end = 0;
  #at = 0;

  /** The free space to read into; {@link ReplyParser.feed} then says how much was read. */
  space(): Uint8Array {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#bytes.length - this.#end < 16 * 1024) {
      const pending = this.#end - this.#start;
      const bytes = pending * 2 + 16 * 1024 > this.#bytes.length
        ? new Uint8Array(this.#bytes.length * 2)
        : this.#bytes;
      bytes.set(this.#bytes.subarray(this.#start, this.#end));
      this.#bytes = bytes;
      this.#start = 0;
      this.#end = pending;
    }
    return this.#bytes.subarray(this.#end);
  }

  /** Counts `read` bytes just read into {@link ReplyParser.space}. */
  feed(read: number): void {
    this.#end += read;
  }

  /** The next whole reply, or {@link INCOMPLETE}. */
  next(): RespValue | typeof INCOMPLETE {
    this.#at = this.#start;
    const value = this.#value();
    if (value !== INCOMPLETE) this.#start = this.#at;
    return value;
  }

  #value(): RespValue | typeof INCOMPLETE {
    if (this.#at >= this.#end) return INCOMPLETE;
    const kind = this.#bytes[this.#at++];
    switch (kind) {
      case 43: /* + */ {
        const line = this.#line();
        return line < 0 ? INCOMPLETE : this.#text(line, this.#at - 2);
      }
      case 45: /* - */ {
        const line = this.#line();
        return line < 0 ? INCOMPLETE : new ErrorReply(this.#text(line, this.#at - 2));
      }
      case 58: /* : */
        return this.#integer();
      case 36: /* $ */ {
        const length = this.#integer();
        if (length === INCOMPLETE) return INCOMPLETE;
        if (length < 0) return null;
        const start = this.#at;
        if (start + length + 2 > this.#end) return INCOMPLETE;
        this.#at = start + length + 2;
        return this.#text(start, start + length);
      }
      case 42: /* * */ {
        const count = this.#integer();
        if (count === INCOMPLETE) return INCOMPLETE;
        if (count < 0) return null;
        const items: RespValue[] = new Array(count);
        for (let i = 0; i < count; i++) {
          const item = this.#value();
          if (item === INCOMPLETE) return INCOMPLETE;
          items[i] = item;
        }
        return items;
      }
      default:
        throw new Error(
          `its reply starts with ${JSON.stringify(String.fromCharCode(kind!))} (byte ${kind}), ` +
            "not a Redis reply: is a Redis server listening there?",
        );
    }
  }

  /** Skips to after the next CRLF; returns where the line started, or -1 when it is not all here. */
  #line(): number {
    const start = this.#at;
    const bytes = this.#bytes;
    for (let at = start; at < this.#end; at++) {
      if (bytes[at] === LF) {
        this.#at = at + 1;
        return start;
      }
    }
    return -1;
  }

  #integer(): number | typeof INCOMPLETE {
    const bytes = this.#bytes;
    let at = this.#at;
    const negative = bytes[at] === 45;
    if (negative) at++;
    let value = 0;
    for (; at < this.#end; at++) {
      const byte = bytes[at]!;
      if (byte === CR) {
        if (at + 1 >= this.#end) return INCOMPLETE;
        this.#at = at + 2;
        return negative ? -value : value;
      }
      value = value * 10 + byte - 48;
    }
    return INCOMPLETE;
  }

  /** The text of bytes [start, end): ASCII char by char, anything else through TextDecoder. */
  #text(start: number, end: number): string {
    const bytes = this.#bytes;
    if (end - start > 64) return utf8.decode(bytes.subarray(start, end));
    let text = "";
    for (let at = start; at < end; at++) {
      const byte = bytes[at]!;
      if (byte >= 0x80) return utf8.decode(bytes.subarray(start, end));
      text += String.fromCharCode(byte);
    }
    return text;
  }
}
