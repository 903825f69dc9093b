// The rule of piece digests (p2p/piece_digest.ts): which algorithm a digest
// names, bytes checked with it, and the packed form the Redis directory keeps.
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import {
  digestLike,
  onePieceAlgorithm,
  packPieceDigests,
  pieceAlgorithm,
  unpackPieceDigests,
} from "../../p2p/piece_digest.ts";
import { blake3 } from "../../p2p/blake3.ts";
import { sha256 } from "../../p2p/sha256.ts";
import { InvalidArgumentError } from "../../mod.ts";
import { runDenoScript } from "../helpers/deno_script.ts";

const a = "a".repeat(64), b = "b".repeat(64);

Deno.test("pieceAlgorithm() names the algorithm of a piece digest, and nothing else", () => {
  assertEquals(pieceAlgorithm(`blake3:${a}`), "blake3");
  assertEquals(pieceAlgorithm(`sha256:${a}`), "sha256");
  for (
    const bad of [
      "",
      `md5:${a}`,
      "blake3:",
      `blake3:${a}0`,
      `BLAKE3:${a}`,
      `blake3:${"A".repeat(64)}`,
    ]
  ) {
    assertEquals(pieceAlgorithm(bad), undefined, bad);
  }
  assertEquals(onePieceAlgorithm([]), true);
  assertEquals(onePieceAlgorithm([`blake3:${a}`, `blake3:${b}`]), true);
  assertEquals(onePieceAlgorithm([`blake3:${a}`, `sha256:${b}`]), false);
  assertEquals(onePieceAlgorithm([`blake3:${a}`, "x"]), false);
});

Deno.test("digestLike() hashes with the algorithm the expected digest names", async () => {
  const bytes = new Uint8Array(5000).map((_, i) => i & 0xff);
  assertEquals(await digestLike(bytes, `sha256:${a}`), await sha256(bytes));
  assertEquals(await digestLike(bytes, `blake3:${a}`), await blake3(bytes));
  // One that names no algorithm: the new records' one, whose digest equals no such string.
  assertEquals(await digestLike(bytes, ""), await blake3(bytes));
});

Deno.test("packed piece digests: SHA-256 bare as older daemons read them, BLAKE3 after its name", () => {
  assertEquals(packPieceDigests([`sha256:${a}`, `sha256:${b}`]), a + b);
  assertEquals(packPieceDigests([`blake3:${a}`, `blake3:${b}`]), `blake3:${a}${b}`);
  assertEquals(packPieceDigests([]), "");
  for (const digests of [[`sha256:${a}`], [`blake3:${a}`, `blake3:${b}`], []]) {
    assertEquals(unpackPieceDigests(packPieceDigests(digests)), digests);
  }
  assertThrows(() => packPieceDigests([`sha256:${a}`, `blake3:${b}`]), InvalidArgumentError);
  for (const bad of [`sha256:${a}`, `md5:${a}`, a.slice(1), `blake3:${a}0`, "zz".repeat(32)]) {
    assertEquals(unpackPieceDigests(bad), undefined, bad);
  }
});

Deno.test("PACKICE_PIECE_DIGEST=sha256 makes new records' pieces SHA-256; another value is refused by name", async () => {
  const script = `
    import { newPieceAlgorithm } from "${new URL("../../p2p/piece_digest.ts", import.meta.url)}";
    const chosen = [];
    for (const value of ["sha256", "blake3", "md5"]) {
      Deno.env.set("PACKICE_PIECE_DIGEST", value);
      try {
        chosen.push(newPieceAlgorithm());
      } catch (error) {
        chosen.push(error.code);
      }
    }
    console.log(chosen.join(" "));
  `;
  const printed = await runDenoScript(script, ["--allow-env", "--allow-read", "--allow-ffi"]);
  assertEquals(printed, "sha256 blake3 INVALID_ARGUMENT");
});
