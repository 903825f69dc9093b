import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { pattern } from "../helpers/cluster.ts";
import {
  checkRecord,
  contentRecord,
  MAX_PIECE_SIZE,
  MIN_PIECE_SIZE,
  pieceSizeFor,
} from "../../p2p/content.ts";
import {
  bindRecord,
  CapacityExceededError,
  checkBinding,
  InvalidArgumentError,
  MemoryPeer,
} from "../../mod.ts";
import { Access } from "../../core/lease.ts";
import { blake3Portable } from "../../p2p/blake3.ts";

const hex = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
// The TypeScript BLAKE3, against which the native one's piece digests are checked.
const b3 = (bytes: Uint8Array) => `blake3:${Buffer.from(blake3Portable(bytes)).toString("hex")}`;

Deno.test("pieceSizeFor() is the power of two of size/500, clamped to 4-64 MiB", () => {
  assertEquals(pieceSizeFor(0), MIN_PIECE_SIZE);
  assertEquals(pieceSizeFor(256 << 20), MIN_PIECE_SIZE);
  assertEquals(pieceSizeFor(500 * (4 << 20)), 4 << 20);
  assertEquals(pieceSizeFor(500 * (4 << 20) + 1), 8 << 20);
  assertEquals(pieceSizeFor(10 * 1024 ** 3), 32 << 20);
  assertEquals(pieceSizeFor(1024 ** 4), MAX_PIECE_SIZE);
});

Deno.test("contentRecord() hashes the whole object (SHA-256) and each piece (BLAKE3), across blobs", async () => {
  await using peer = new MemoryPeer({ capacity: 64 << 20 });
  const bytes = pattern((9 << 20) + 5, 1);
  // Three blobs whose borders fall inside pieces.
  const sizes = [3 << 20, (5 << 20) + 1, (1 << 20) + 4];
  const { lease, blobs } = await peer.acquire("split", Access.CREATE, { size: sizes });
  let at = 0;
  for (const [i, size] of sizes.entries()) {
    await blobs[i]!.write(0, bytes.subarray(at, at + size));
    at += size;
  }
  await peer.seal(lease.id);
  const record = await contentRecord("split", blobs);
  await peer.release(lease.id);
  const piece = MIN_PIECE_SIZE;
  assertEquals(record, {
    id: "split",
    size: bytes.length,
    digest: hex(bytes),
    pieceSize: piece,
    pieceDigests: [0, 1, 2].map((i) => b3(bytes.subarray(i * piece, (i + 1) * piece))),
  });
  assertEquals(checkRecord(record, bytes.length), record);
});

Deno.test("checkRecord() refuses records whose fields disagree", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  const good = { id: "x", size: 10, digest, pieceSize: MIN_PIECE_SIZE, pieceDigests: [digest] };
  checkRecord(good, 100);
  checkRecord({ ...good, pieceDigests: [`blake3:${"b".repeat(64)}`] }, 100);
  const bad = [
    { ...good, digest: `blake3:${"a".repeat(64)}` },
    { ...good, size: 5 << 20, pieceDigests: [digest, `blake3:${"b".repeat(64)}`] },
    { ...good, pieceDigests: [`md5:${"a".repeat(64)}`] },
    { ...good, size: -1 },
    { ...good, pieceSize: 1024 },
    { ...good, pieceDigests: [] },
    { ...good, digest: "xxh64:00" },
    { ...good, pieceDigests: ["sha256:zz"] },
  ];
  for (const record of bad) {
    const error = assertThrows(() => checkRecord(record, 100), InvalidArgumentError);
    assertEquals(error.message.startsWith("Invalid directory record of object x: "), true);
  }
  // Recorded right, larger than this daemon holds: no such fault of the record.
  assertThrows(() => checkRecord({ ...good, size: 1000 }, 100), CapacityExceededError);
});

Deno.test("a record's binding ties its digest to its pieces under the cluster token", async () => {
  const bytes = pattern(5 << 20, 2);
  await using peer = new MemoryPeer({ capacity: 16 << 20 });
  const { lease, blobs } = await peer.acquire("bound", Access.CREATE, { size: bytes.length });
  await blobs[0]!.write(0, bytes);
  await peer.seal(lease.id);
  const record = await contentRecord("bound", blobs, "secret");
  const unbound = await contentRecord("bound", blobs);
  await peer.release(lease.id);
  assertEquals(record.binding, bindRecord(unbound, "secret"));
  assertEquals(unbound.binding, undefined);
  assertEquals(checkBinding(record, "secret"), "bound");
  // Without a binding, or without a token to check it: the whole is to be hashed.
  assertEquals(checkBinding(unbound, "secret"), "unbound");
  assertEquals(checkBinding(record, undefined), "unbound");
  // Any field altered, or another token: forged.
  const zero = `sha256:${"0".repeat(64)}`;
  assertEquals(checkBinding({ ...record, digest: zero }, "secret"), "forged");
  assertEquals(checkBinding({ ...record, pieceDigests: [zero, zero] }, "secret"), "forged");
  // A piece digest's algorithm is bound too: the same hex under another name is forged.
  const renamed = record.pieceDigests.map((piece) => piece.replace(/^blake3:/, "sha256:"));
  assertEquals(record.pieceDigests[0]!.startsWith("blake3:"), true);
  assertEquals(checkBinding({ ...record, pieceDigests: renamed }, "secret"), "forged");
  assertEquals(checkBinding({ ...record, id: "other" }, "secret"), "forged");
  assertEquals(checkBinding(record, "other-secret"), "forged");
  assertEquals(checkBinding({ ...record, binding: "hmac-sha256:xyz" }, "secret"), "forged");
});
