/**
 * Piece bitfields: which pieces a partial holder has, bit i in byte i >> 3,
 * most significant bit first (as BitTorrent's), and their text form in a
 * directory entry (base64).
 *
 * @module
 */

/** The bitfield of the pieces for which `has` is true, of `count` pieces. */
export function bitfieldOf(count: number, has: (piece: number) => boolean): Uint8Array {
  const bits = new Uint8Array(Math.ceil(count / 8));
  for (let piece = 0; piece < count; piece++) {
    if (has(piece)) bits[piece >> 3]! |= 0x80 >> (piece & 7);
  }
  return bits;
}

/** Whether `bits` has `piece`. */
export function hasPiece(bits: Uint8Array, piece: number): boolean {
  return ((bits[piece >> 3] ?? 0) & (0x80 >> (piece & 7))) !== 0;
}

/** Base64 of a bitfield. */
export function encodeBitfield(bits: Uint8Array): string {
  let text = "";
  for (const byte of bits) text += String.fromCharCode(byte);
  return btoa(text);
}

/**
 * A bitfield from its base64.
 *
 * @returns Undefined for text that is not base64.
 */
export function decodeBitfield(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}
