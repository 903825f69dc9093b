import { toHex } from "../../core/hex.ts";
import { assertEquals } from "../helpers/assert.ts";

Deno.test("toHex() writes two lowercase digits a byte, leading zeros kept", () => {
  assertEquals(toHex(new Uint8Array([0, 10, 171, 255])), "000aabff");
  assertEquals(toHex(new Uint8Array(0)), "");
});
