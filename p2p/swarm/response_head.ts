/**
 * The head of an HTTP/1.1 response, as a native connection reads it: its
 * status and its header fields, names in lower case.
 *
 * @module
 */

/** A response's status and headers (names lower case; repeated fields joined by ", "). */
export interface ResponseHead {
  /** The status code; 0 when the head is not HTTP/1.x. */
  readonly status: number;
  /** Header fields by lower-case name. */
  readonly headers: ReadonlyMap<string, string>;
}

/**
 * Parses a response head, through its blank line.
 *
 * @returns Status 0 for a head that is not HTTP/1.x: no status it could have is expected.
 *
 * @example
 * ```ts ignore
 * parseHead("HTTP/1.1 206 Partial Content\r\ncontent-length: 4\r\n\r\n").status; // 206
 * ```
 */
export function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const before = headers.get(name);
    headers.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  return { status: status === null ? 0 : Number(status[1]), headers };
}
