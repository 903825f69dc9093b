/** Checks of the arguments of in-process peer calls that the validators of `validate.ts` do not cover. */
import { InvalidArgumentError } from "./errors.ts";
import { shown } from "./shown.ts";

/** Options of an in-process call: absent or an object; each field is checked where it is used. */
export function checkOptions(options: unknown): void {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError(`Invalid options: expected an object, got ${shown(options)}`);
  }
}

/** The chunks of a put: a loop, not a callback, as small puts are a hot path. */
export function checkChunks(chunks: unknown): void {
  let valid = Array.isArray(chunks);
  for (let i = 0; valid && i < (chunks as unknown[]).length; i++) {
    valid = (chunks as unknown[])[i] instanceof Uint8Array;
  }
  if (!valid) throw new InvalidArgumentError("Invalid chunks: expected an array of Uint8Array");
}

export function checkMemfds(memfds: unknown): void {
  if (!Array.isArray(memfds) || !memfds.every((fd) => Number.isSafeInteger(fd) && fd >= 0)) {
    throw new InvalidArgumentError("Invalid memfds: expected an array of file descriptors");
  }
}
