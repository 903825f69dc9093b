/**
 * The binding of a content record: an HMAC-SHA256, keyed by the cluster
 * token, over the record's id, size, content digest, piece size and piece
 * digests, made by the daemon that sealed the object and hashed its bytes.
 *
 * It ties the content digest to the piece digests: a fetcher that checked
 * the binding and verified every piece has the bytes the sealer hashed,
 * whose SHA-256 is the content digest, without hashing the whole object a
 * second time. The piece digests are bound as the strings they are, their
 * algorithm's name (`blake3:` or `sha256:`) included: a piece is checked
 * with the algorithm its bound digest names, which no one without the token
 * can change (to a weaker one, say), and each algorithm's collision
 * resistance carries the proof. A directory entry altered by anyone without the token no
 * longer matches, and is refused; an entry without a binding (sealed by an
 * older daemon, or in a cluster without a token) is checked the old way,
 * by hashing the whole object.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { ContentRecord } from "./directory.ts";

const PREFIX = "hmac-sha256:";
const BINDING = /^hmac-sha256:[0-9a-f]{64}$/;

/**
 * The binding of `record` under `token`.
 *
 * @example
 * ```ts
 * import { bindRecord } from "@packice/packice";
 * const record = {
 *   id: "empty",
 *   size: 0,
 *   digest: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
 *   pieceSize: 4 << 20,
 *   pieceDigests: [],
 * };
 * console.log(bindRecord(record, "cluster-secret").startsWith("hmac-sha256:")); // true
 * ```
 */
export function bindRecord(record: ContentRecord, token: string): string {
  const { id, size, digest, pieceSize, pieceDigests } = record;
  const fields = JSON.stringify([id, size, digest, pieceSize, pieceDigests]);
  return PREFIX + createHmac("sha256", token).update(fields).digest("hex");
}

/**
 * What a fetcher may conclude from a record's binding.
 *
 * - `bound`: the binding matches; verified pieces prove the whole.
 * - `unbound`: no binding, or no token to check it with; the whole is to be hashed.
 * - `forged`: a binding that does not match: the record is not to be trusted.
 */
export type Binding = "bound" | "unbound" | "forged";

/** Checks `record`'s binding against `token`. */
export function checkBinding(record: ContentRecord, token: string | undefined): Binding {
  const binding = record.binding;
  if (binding === undefined || token === undefined) return "unbound";
  if (!BINDING.test(binding)) return "forged";
  const expected = new TextEncoder().encode(bindRecord(record, token));
  const given = new TextEncoder().encode(binding);
  return timingSafeEqual(expected, given) ? "bound" : "forged";
}
