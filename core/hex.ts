/** Bytes written as lowercase hexadecimal, the one spelling of digests, lock names and tokens. */

/**
 * The bytes as lowercase hexadecimal, two digits a byte.
 *
 * @param bytes The bytes.
 * @returns The text, twice as long as `bytes`.
 *
 * @example
 * ```ts ignore
 * toHex(new Uint8Array([0, 171, 255])); // "00abff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
