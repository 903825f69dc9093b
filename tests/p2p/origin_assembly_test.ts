/**
 * The piece digests of an origin object put together here stay of one
 * algorithm, whichever kinds of daemons (SHA-256 or BLAKE3 records) its
 * pieces' digests came from: other daemons refuse a record of both.
 */
import { assertEquals } from "../helpers/assert.ts";
import { pattern } from "../helpers/cluster.ts";
import { Assembly } from "../../p2p/origin/assembly.ts";
import { pieceAlgorithm, pieceDigest } from "../../p2p/piece_digest.ts";

const MiB = 1 << 20;

Deno.test("an assembly hashes its pieces with the algorithm of the digests it knows, and its record has one", async () => {
  const bytes = pattern(12 * MiB, 96);
  const assembly = new Assembly("mixed", bytes.length, bytes.slice());
  try {
    // Taken over from a downloader of SHA-256 records, whose digest of piece 0 is known.
    assembly.digests[0] = await pieceDigest(bytes.subarray(0, 4 * MiB), "sha256");
    assembly.verifiedPiece(0);
    await assembly.hashed(1);
    assertEquals(pieceAlgorithm(assembly.digests[1]!), "sha256");
    // A BLAKE3 digest of piece 2 came from another downloader meanwhile.
    assembly.digests[2] = await pieceDigest(bytes.subarray(8 * MiB), "blake3");
    assembly.verifiedPiece(2);
    const [first, second] = assembly.digests as [string, string];
    const record = await assembly.record();
    assertEquals(record.pieceDigests, [
      first,
      second,
      await pieceDigest(bytes.subarray(8 * MiB), "sha256"),
    ]);
  } finally {
    await assembly.settled();
  }
});

Deno.test("an assembly takes a digest of the other algorithm for a piece held when its bytes match, and keeps its own when not", async () => {
  const bytes = pattern(8 * MiB, 97);
  const assembly = new Assembly("retaken", bytes.length, bytes.slice());
  try {
    for (const piece of [0, 1]) {
      assembly.digests[piece] = await pieceDigest(
        bytes.subarray(piece * 4 * MiB, (piece + 1) * 4 * MiB),
        "sha256",
      );
      assembly.verifiedPiece(piece);
    }
    const matching = await pieceDigest(bytes.subarray(0, 4 * MiB), "blake3");
    await assembly.retake(0, matching);
    // Piece 0's digest is not piece 1's.
    await assembly.retake(1, matching);
    assertEquals(assembly.digests[0], matching);
    assertEquals(pieceAlgorithm(assembly.digests[1]!), "sha256");
  } finally {
    await assembly.settled();
  }
});
