/** The texts a server connection decodes again without a new string: right whatever it keeps. */
import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { ProtocolError } from "../../../core/errors.ts";
import { RecentTexts } from "../../../transport/uds/recent_texts.ts";

const encoder = new TextEncoder();

Deno.test("RecentTexts decodes each text right, recent or not, however many share its slot", () => {
  const recent = new RecentTexts(4);
  const ids = Array.from({ length: 40 }, () => crypto.randomUUID());
  for (const id of ids) recent.add(id);
  // Short, long, alike at both ends and different in the middle.
  const texts = [...ids, "a", "a".repeat(250), "obj-000000-1-end", "obj-000000-2-end", ""];
  for (let round = 0; round < 2; round++) {
    for (const text of texts) assertEquals(recent.decode(encoder.encode(text)), text);
  }
});

Deno.test("RecentTexts never takes the bytes of a non-ASCII text for it", () => {
  const recent = new RecentTexts(1);
  recent.add("\u00e9");
  // The one byte 0xE9 is the char code of "é" but not its UTF-8: invalid on its own.
  assertThrows(() => recent.decode(new Uint8Array([0xe9])), ProtocolError);
  assertEquals(recent.decode(encoder.encode("\u00e9")), "\u00e9");
});

Deno.test("RecentTexts wants a power of two", () => {
  assertThrows(() => new RecentTexts(6), RangeError);
});

Deno.test("RecentTexts decodes a text that starts inside its bytes, as OPEN's object id does", () => {
  const recent = new RecentTexts(8);
  const framed = (text: string) => new Uint8Array([1, 2, 3, ...new TextEncoder().encode(text)]);
  assertEquals(recent.decode(framed("object-1"), 3), "object-1");
  // Now recent: the same bytes give the same string, whatever comes before them.
  assertEquals(recent.decode(new Uint8Array([9, ...framed("object-1")]), 4), "object-1");
  assertEquals(recent.decode(framed("object-2"), 3), "object-2");
  assertEquals(recent.decode(framed(""), 3), "");
});
