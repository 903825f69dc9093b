import { connect, LeaseExpiredError, PackiceCacheStorage } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

testInSocketDir(
  "reads and writes of leases lost in a daemon restart fail with LEASE_EXPIRED, never end short",
  async (dir) => {
    const path = `${dir}/packice.sock`;
    let daemon = await spawnDaemon(path, ["--capacity", "64MiB"]);
    try {
      await using client = await connect(path);
      const size = 3 << 20;
      await client.put(new Uint8Array(size).fill(7), { id: "big" });
      const cache = await new PackiceCacheStorage(client).open("c");
      await cache.put("https://example.com/a", new Response(new Uint8Array(size).fill(8)));

      const handle = await client.get("big");
      const stream = handle.stream().getReader();
      assertEquals((await stream.read()).value?.length, 1 << 20);
      const body = (await cache.match("https://example.com/a"))!.body!.getReader();
      assertEquals((await body.read()).value?.[0], 8);
      const writer = await client.create(4, { id: "unfinished" });

      await daemon.stop("SIGKILL");
      daemon = await spawnDaemon(path, ["--capacity", "64MiB"]);
      assertEquals(await client.has("big"), false, "a new, empty daemon answers");

      // The bytes read so far were not the whole object: the rest must not read as its end.
      await assertRejects(() => stream.read(), LeaseExpiredError);
      await assertRejects(() => body.read(), LeaseExpiredError);
      const error = await assertRejects(
        () => writer.write(new Uint8Array([1, 2, 3, 4])),
        LeaseExpiredError,
      );
      assert(error.message.includes(path), error.message);
      await writer.close();
    } finally {
      await daemon.stop();
    }
  },
);
