/** Content records of test bodies cut in pieces of any size (the daemons' pieces are 4 MiB or more). */
import { createHash } from "node:crypto";
import { pieceCount } from "../../p2p/content.ts";
import type { ContentRecord } from "../../p2p/directory.ts";

/** `sha256:<hex>` of `bytes`. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The record of `body` under `id`, in pieces of `pieceSize` bytes (the last one shorter). */
export function pieceRecord(id: string, body: Uint8Array, pieceSize: number): ContentRecord {
  return {
    id,
    size: body.length,
    digest: digestOf(body),
    pieceSize,
    pieceDigests: Array.from(
      { length: pieceCount(body.length, pieceSize) },
      (_, i) => digestOf(body.subarray(i * pieceSize, (i + 1) * pieceSize)),
    ),
  };
}
