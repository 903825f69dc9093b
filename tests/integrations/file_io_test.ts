import { type Client, connect } from "../../mod.ts";
import { putFromReader, type Reader, writeWhole } from "../../integrations/file_io.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { startHttp } from "../helpers/http_fixture.ts";

/** A reader of `bytes`, a few at a time. */
function readerOf(bytes: Uint8Array, most = 3): Reader {
  let at = 0;
  return {
    read(into) {
      if (at === bytes.length) return Promise.resolve(null);
      const count = Math.min(most, into.length, bytes.length - at);
      into.set(bytes.subarray(at, at + count));
      at += count;
      return Promise.resolve(count);
    },
  };
}

const hooks = (reads: number[]) => ({
  piece: 4,
  onRead: (count: number) => reads.push(count),
  changed: (how: "shrank" | "grew") => new RangeError(how),
});

async function readerCases(client: Client): Promise<void> {
  const bytes = new Uint8Array(10).map((_, i) => i + 1);
  const reads: number[] = [];
  const id = await putFromReader(client, readerOf(bytes), 10, { id: "whole" }, hooks(reads));
  using handle = await client.get(id);
  assertEquals(handle.bytes, bytes);
  assertEquals(reads.reduce((sum, count) => sum + count, 0), 10);

  for (const [size, how] of [[11, "shrank"], [9, "grew"]] as const) {
    const error = await assertRejects(
      () => putFromReader(client, readerOf(bytes), size, { id: how }, hooks([])),
      RangeError,
    );
    assertEquals(error.message, how);
    assertEquals(await client.has(how), false, "an object of the wrong size is never sealed");
  }
}

Deno.test("putFromReader() reads into the object's memory, and refuses a reader that shrank or grew", async () => {
  await using client = await connect();
  await readerCases(client);
});

Deno.test("putFromReader() writes in pieces where the object has no memory, with the same checks", async () => {
  await using http = startHttp();
  await using client = await connect(http.server.url);
  await readerCases(client);
});

Deno.test("writeWhole() replaces a file only once the write has finished", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-whole-" });
  try {
    const path = `${dir}/out`;
    await Deno.writeTextFile(path, "old");
    await assertRejects(() =>
      writeWhole(path, async (file) => {
        await file.write(new TextEncoder().encode("half"));
        throw new Error("cut off");
      }), Error);
    assertEquals(await Deno.readTextFile(path), "old");
    assertEquals([...Deno.readDirSync(dir)].map((entry) => entry.name), ["out"]);
    await writeWhole(path, async (file) => {
      await file.write(new TextEncoder().encode("new"));
    }, 0o600);
    assertEquals(await Deno.readTextFile(path), "new");
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert([...Deno.readDirSync(dir)].length === 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
