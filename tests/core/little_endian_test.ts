import { assertEquals } from "../helpers/assert.ts";
import {
  readFloat64,
  readUint16,
  readUint32,
  writeBigUint64,
  writeFloat64,
  writeUint16,
  writeUint32,
} from "../../core/little_endian.ts";

Deno.test("little_endian writes fields low byte first, as DataView does with littleEndian", () => {
  const bytes = new Uint8Array(22);
  writeUint16(bytes, 0, 0x4b50);
  writeUint32(bytes, 2, 0xdeadbeef);
  writeFloat64(bytes, 6, -1.5e300);
  writeBigUint64(bytes, 14, 0x0102030405060708n);
  const view = new DataView(bytes.buffer);
  assertEquals(view.getUint16(0, true), 0x4b50);
  assertEquals(view.getUint32(2, true), 0xdeadbeef);
  assertEquals(view.getFloat64(6, true), -1.5e300);
  assertEquals(view.getBigUint64(14, true), 0x0102030405060708n);
  assertEquals([readUint16(bytes, 0), readUint32(bytes, 2), readFloat64(bytes, 6)], [
    0x4b50,
    0xdeadbeef,
    -1.5e300,
  ]);
});
