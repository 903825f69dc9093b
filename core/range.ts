/** The range rule of reads and writes: the one check every blob and every transport applies. */
import { InvalidArgumentError } from "./errors.ts";
import { validateSize } from "./validate.ts";

/**
 * Checks that `length` bytes at `offset` lie inside `size` bytes.
 *
 * @param action What is done with the bytes, for the message.
 * @param offset Where the range starts.
 * @param length How many bytes it holds.
 * @param size The size of what it lies in.
 * @param what What it lies in, for the message: an object's id, "blob 0 of abc". A string the
 * caller holds already, so that the check builds none on the read and write paths.
 * @throws {InvalidArgumentError} When `offset` or `length` is not a non-negative safe integer, or
 * the range ends past `size`.
 */
export function checkRange(
  action: "read" | "write",
  offset: number,
  length: number,
  size: number,
  what: string,
): void {
  validateSize(offset, "offset");
  validateSize(length, "length");
  if (offset + length > size) {
    throw new InvalidArgumentError(
      `Cannot ${action} ${length} bytes at offset ${offset} of ${what}: it holds ${size} bytes`,
    );
  }
}
