import { UnauthorizedError } from "../../core/errors.ts";

const encoder = new TextEncoder();

/**
 * Checks `Authorization: Bearer <token>` against the expected token in time
 * that depends only on the presented token's length, never on where the two
 * first differ.
 */
export class BearerAuth {
  readonly #expected: Uint8Array;

  /** @param token The token clients must present. */
  constructor(token: string) {
    this.#expected = encoder.encode(token);
  }

  /**
   * @param header The request's `Authorization` header.
   * @throws {UnauthorizedError} When it is missing or the token is wrong.
   */
  check(header: string | null): void {
    if (header === null) throw new UnauthorizedError("Missing bearer token");
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      throw new UnauthorizedError("Malformed Authorization header: expected Bearer");
    }
    if (!equalInConstantTime(encoder.encode(match[1]), this.#expected)) {
      throw new UnauthorizedError("Wrong bearer token");
    }
  }
}

/** Compares every byte of `given` whatever the outcome, so timing leaks nothing of `expected`. */
function equalInConstantTime(given: Uint8Array, expected: Uint8Array): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < given.length; i++) {
    diff |= given[i]! ^ (expected[i % expected.length] ?? 0);
  }
  return diff === 0;
}
