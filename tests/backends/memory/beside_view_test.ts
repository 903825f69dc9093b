/**
 * A view of an object stored in C for a small put (`BesideBlob`) is a copy
 * of its bytes that must live as long as the view: it was an alias that did
 * not keep the copy alive, so once garbage was collected the view read
 * (and a write through it corrupted) memory freed and handed to others.
 */
import { assertEquals } from "../../helpers/assert.ts";
import { openNative } from "../../helpers/native.ts";

Deno.test({
  name: "a view of an object stored in C keeps its bytes through garbage collection",
  ignore: openNative() === undefined,
  async fn() {
    const child = new URL("../../helpers/beside_view_child.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--v8-flags=--expose-gc", child],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(stdout);
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    assertEquals(output, "intact\n");
  },
});
