/**
 * Piece bitfields: which pieces a partial holder has, bit i in byte i >> 3,
 * most significant bit first (as BitTorrent's), and their text form in a
 * directory entry (base64).
 *
 * A partial holder announces two bitfields back to back: the pieces it has,
 * then the pieces on their way to it ({@link announcedBitfield}). A reader
 * that knows only the first sees what it has, as before; one that knows
 * both does not ask a holder of the whole object for a piece already on its
 * way to another receiver, which is how a broadcast's first holder sends
 * each piece about once even when receivers learn of each other late.
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

/** The two bitfields a partial holder announces: the pieces it has, then those coming. */
export function announcedBitfield(
  count: number,
  has: (piece: number) => boolean,
  coming: (piece: number) => boolean,
): Uint8Array {
  const half = Math.ceil(count / 8);
  const bits = new Uint8Array(2 * half);
  bits.set(bitfieldOf(count, has));
  bits.set(bitfieldOf(count, (piece) => !has(piece) && coming(piece)), half);
  return bits;
}

/** Whether announced `bits` of an object of `count` pieces say `piece` is on its way. */
export function isComing(bits: Uint8Array, count: number, piece: number): boolean {
  const half = Math.ceil(count / 8);
  return bits.length >= 2 * half && hasPiece(bits.subarray(half), piece);
}

/** Base64 of a bitfield. */
export function encodeBitfield(bits: Uint8Array): string {
  return bits.toBase64();
}

/**
 * A bitfield from its base64.
 *
 * @returns Undefined for text that is not base64.
 */
export function decodeBitfield(text: string): Uint8Array | undefined {
  try {
    // Looked up many times a second, for every holder: no string of its bytes first.
    return Uint8Array.fromBase64(text);
  } catch {
    return undefined;
  }
}

/** Whether two listings of a holder's pieces are the same (undefined: a whole copy). */
export function sameBits(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
