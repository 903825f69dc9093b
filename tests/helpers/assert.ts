/** Assertions for tests, from Node's built-in module (JSR's @std/assert is not reachable here). */
import nodeAssert from "node:assert/strict";

/** Asserts a value is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Asserts deep equality; typed arrays compare by content. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts a promise rejects with an instance of `ErrorClass`, and returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  let thrown: unknown;
  try {
    await fn();
  } catch (error) {
    thrown = error;
  }
  if (!(thrown instanceof ErrorClass)) {
    throw new Error(
      `Expected ${ErrorClass.name}, got ${thrown === undefined ? "no error" : String(thrown)}`,
    );
  }
  if (includes !== undefined && !thrown.message.includes(includes)) {
    throw new Error(`Expected message to include "${includes}": ${thrown.message}`);
  }
  return thrown;
}

/** Asserts a function throws synchronously with an instance of `ErrorClass`. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw new Error(`Expected ${ErrorClass.name}, got ${String(error)}`);
  }
  throw new Error(`Expected ${ErrorClass.name}, got no error`);
}
