/**
 * Piece digests: which algorithm a digest string names, and how to check
 * bytes against one. New records name BLAKE3 (`blake3:<hex>`), which a
 * receiver hashes several times faster than SHA-256 (see `newPieceAlgorithm`);
 * records made by older daemons, or stored before, name SHA-256
 * (`sha256:<hex>`) and still verify. The whole-object digest, the object's
 * identity, stays SHA-256.
 *
 * @module
 */
import { InvalidArgumentError } from "../core/errors.ts";
import { blake3 } from "./blake3.ts";
import { hashSymbols } from "./hash_threads.ts";
import { sha256 } from "./sha256.ts";

/** An algorithm a piece digest may name. */
export type PieceAlgorithm = "sha256" | "blake3";

/**
 * The algorithm of the piece digests of new records: BLAKE3 with the native
 * library; without it SHA-256, which WebCrypto hashes off the JS thread
 * (BLAKE3 in TypeScript is slow, and runs on it: it only checks others' pieces).
 * SHA-256 too where the environment variable `PACKICE_PIECE_DIGEST` is
 * `sha256`: records that daemons older than BLAKE3 records can check, while
 * a cluster is upgraded.
 *
 * @throws {InvalidArgumentError} When `PACKICE_PIECE_DIGEST` is set to another value.
 *
 * @example
 * ```ts
 * import { newPieceAlgorithm } from "@packice/packice";
 * console.log(newPieceAlgorithm()); // "blake3" where the native library loads
 * ```
 */
export function newPieceAlgorithm(): PieceAlgorithm {
  return chosen() ?? (hashSymbols() === undefined ? "sha256" : "blake3");
}

/** The algorithm `PACKICE_PIECE_DIGEST` asks for, if any. */
function chosen(): PieceAlgorithm | undefined {
  let value: string | undefined;
  try {
    value = Deno.env.get("PACKICE_PIECE_DIGEST");
  } catch {
    // No permission to read the environment: the default.
  }
  if (value === undefined || value === "" || value === "blake3") return undefined;
  if (value === "sha256") return "sha256";
  throw new InvalidArgumentError(
    `PACKICE_PIECE_DIGEST is ${JSON.stringify(value)}: set it to sha256, or leave it unset`,
  );
}

const PIECE_DIGEST = /^(sha256|blake3):[0-9a-f]{64}$/;

/**
 * The algorithm `digest` names, or undefined when it is no piece digest.
 *
 * @example
 * ```ts
 * import { pieceAlgorithm } from "@packice/packice";
 * console.log(pieceAlgorithm(`blake3:${"0".repeat(64)}`)); // "blake3"
 * console.log(pieceAlgorithm("md5:00")); // undefined
 * ```
 */
export function pieceAlgorithm(digest: string): PieceAlgorithm | undefined {
  return PIECE_DIGEST.exec(digest)?.[1] as PieceAlgorithm | undefined;
}

/**
 * Whether `digests` are piece digests all of one algorithm (as every record
 * has them; none at all, for an empty object, qualify).
 */
export function onePieceAlgorithm(digests: readonly string[]): boolean {
  const first = digests.length === 0 ? "sha256" : pieceAlgorithm(digests[0]!);
  return first !== undefined && digests.every((digest) => pieceAlgorithm(digest) === first);
}

/**
 * The digest of `bytes` with `algorithm`, as `<algorithm>:<hex>`; large
 * inputs hash on another thread.
 *
 * @param bytes A view; its memory must stay as it is, and mapped, until the promise settles.
 *
 * @example
 * ```ts
 * import { pieceDigest } from "@packice/packice";
 * console.log(await pieceDigest(new Uint8Array(0)));
 * // blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262
 * ```
 */
export function pieceDigest(
  bytes: Uint8Array,
  algorithm: PieceAlgorithm = newPieceAlgorithm(),
): Promise<string> {
  return algorithm === "blake3" ? blake3(bytes) : sha256(bytes as Uint8Array<ArrayBuffer>);
}

/**
 * The digest of `bytes` with the algorithm `expected` names, to compare
 * with it: bytes match a piece digest when this equals it. Where `expected`
 * names no algorithm (or is empty), the default one's: equal to no such string.
 *
 * @param bytes A view; its memory must stay as it is, and mapped, until the promise settles.
 */
export function digestLike(bytes: Uint8Array, expected: string): Promise<string> {
  return pieceDigest(bytes, pieceAlgorithm(expected) ?? newPieceAlgorithm());
}

/**
 * Piece digests as one string, for a store that keeps them so: the hex of
 * each in order, after `<algorithm>:` unless SHA-256 (bare, as older daemons
 * read it; they refuse the other, which they could not check).
 *
 * @throws {InvalidArgumentError} When the digests are not all of one algorithm.
 */
export function packPieceDigests(digests: readonly string[]): string {
  if (!onePieceAlgorithm(digests)) {
    throw new InvalidArgumentError(
      "Cannot store piece digests: they are not all sha256:<hex> or all blake3:<hex>",
    );
  }
  const algorithm = digests.length === 0 ? "sha256" : pieceAlgorithm(digests[0]!);
  const hex = digests.map((digest) => digest.slice(digest.indexOf(":") + 1)).join("");
  return algorithm === "sha256" ? hex : `${algorithm}:${hex}`;
}

/** The piece digests {@link packPieceDigests} packed, or undefined when `packed` is not such. */
export function unpackPieceDigests(packed: string): string[] | undefined {
  const colon = packed.indexOf(":");
  const algorithm = colon < 0 ? "sha256" : packed.slice(0, colon);
  const hex = packed.slice(colon + 1);
  if (algorithm !== "sha256" && algorithm !== "blake3") return undefined;
  if (colon >= 0 && algorithm === "sha256") return undefined;
  if (hex.length % 64 !== 0 || !/^[0-9a-f]*$/.test(hex)) return undefined;
  const digests: string[] = [];
  for (let at = 0; at < hex.length; at += 64) {
    digests.push(`${algorithm}:${hex.slice(at, at + 64)}`);
  }
  return digests;
}
