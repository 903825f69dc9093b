import { createHash } from "node:crypto";
import { assertEquals } from "../helpers/assert.ts";
import { pattern } from "../helpers/cluster.ts";
import { sha256, wholeHash } from "../../p2p/sha256.ts";
import { loadNative } from "../../native/load.ts";

const LENGTHS = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 65_543, 1 << 20];

const expected = (bytes: Uint8Array) =>
  `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function checkAll(): Promise<void> {
  for (const length of LENGTHS) {
    const bytes = pattern(length, length + 1);
    assertEquals(await sha256(bytes), expected(bytes), `one call, ${length} bytes`);
    for (const step of [1, 63, 1000, 70_000]) {
      if (length > 70_000 && step === 1) continue;
      const whole = wholeHash();
      for (let at = 0; at < length; at += step) whole.update(bytes.subarray(at, at + step));
      assertEquals(await whole.digest(), expected(bytes), `steps of ${step}, ${length} bytes`);
    }
  }
}

Deno.test("sha256() and wholeHash() agree with node:crypto at block borders", async () => {
  await checkAll();
});

// Without the native library, the fallback is node:crypto and WebCrypto themselves.
const native = loadNative();
Deno.test({
  name: "the native SHA-256 in plain C agrees with node:crypto too",
  ignore: native === undefined,
  fn: async () => {
    native!.symbols.pk_sha256_accel(1);
    try {
      await checkAll();
    } finally {
      native!.symbols.pk_sha256_accel(0);
    }
  },
});
