/**
 * Objects damaged on disk by hand while a daemon was down: the restarted
 * daemon removes them, as before, and now says which and that they are lost.
 */
import { connect, InternalError } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

for (const impl of ["fs", "tiered"]) {
  testInSocketDir(
    `a ${impl} daemon names the objects it removes as damaged at start`,
    async (dir) => {
      const path = `${dir}/p.sock`;
      const data = `${dir}/data`;
      // Store mode: a tiered daemon writes each object through to disk at seal.
      const args = ["--impl", impl, "--data-dir", data, "--mode", "store"];
      {
        await using _daemon = await spawnDaemon(path, args);
        await using client = await connect(path);
        for (const id of ["short", "gone", "meta", "whole"]) {
          await client.put(new Uint8Array(100_000).fill(1), { id });
        }
      }
      await Deno.truncate(`${data}/objects/short/0`, 10);
      await Deno.remove(`${data}/objects/gone/0`);
      await Deno.writeTextFile(`${data}/objects/meta/meta.json`, "not json");
      await using daemon = await spawnDaemon(path, args);
      await using client = await connect(path);
      assertEquals((await client.list()).map((info) => info.id), ["whole"]);
      await daemon.stop();
      const lines = daemon.stderr().trim().split("\n");
      assertEquals(lines.length, 3, daemon.stderr());
      for (const id of ["short", "gone", "meta"]) {
        const line = lines.find((text) =>
          text.includes(`Removed object ${id} from ${data}/objects/${id}`)
        );
        assert(line?.includes("WARN") && line.includes("it is lost"), daemon.stderr());
      }
    },
  );
}

testInSocketDir("a read of an object damaged on disk while served says what to do", async (dir) => {
  const path = `${dir}/p.sock`;
  const data = `${dir}/data`;
  await using _daemon = await spawnDaemon(path, ["--impl", "fs", "--data-dir", data]);
  await using client = await connect(path);
  for (const id of ["short", "gone"]) await client.put(new Uint8Array(100_000).fill(1), { id });
  await Deno.truncate(`${data}/objects/short/0`, 10);
  await Deno.remove(`${data}/objects/gone/0`);
  for (const id of ["short", "gone"]) {
    const error = await assertRejects(async () => {
      using handle = await client.get(id);
      handle.bytes.length;
    }, InternalError);
    assert(error.message.includes(`${data}/objects/${id}/0 is`), error.message);
    assert(error.message.includes("delete it and put it again"), error.message);
  }
});
