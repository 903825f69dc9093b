import { connect, LeaseExpiredError, localTarget, StoreUnavailableError } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

testInSocketDir("a client whose daemon restarted connects again on its next call", async (dir) => {
  const path = `${dir}/packice.sock`;
  let daemon = await spawnDaemon(path, ["--capacity", "16MiB"]);
  try {
    await using client = await connect(path);
    await client.put("before", { id: "a" });
    const handle = await client.get("a");
    assertEquals(new TextDecoder().decode(handle.bytes), "before");
    const writer = await client.create(4, { id: "unfinished" });

    await daemon.stop("SIGKILL");
    // Down: unavailable, never a miss.
    await assertRejects(() => client.has("a"), StoreUnavailableError);
    await assertRejects(() => client.list(), StoreUnavailableError);

    daemon = await spawnDaemon(path, ["--capacity", "16MiB"]);
    assertEquals(await client.has("a"), false, "a new, empty daemon answers");
    await client.put("after", { id: "b" });
    using again = await client.get("b");
    assertEquals(new TextDecoder().decode(again.bytes), "after");

    // Leases from before the restart end with a typed error, their views detached.
    assertEquals(handle.bytes.length, 0);
    await handle.close();
    const error = await assertRejects(() => writer.seal(), LeaseExpiredError);
    assert(error.message.includes(path), error.message);
    await writer.close();
    assertEquals(await client.has("unfinished"), false);
  } finally {
    await daemon.stop();
  }
});

testInSocketDir("a restart between two reads is not seen by the second", async (dir) => {
  const path = `${dir}/packice.sock`;
  let daemon = await spawnDaemon(path);
  try {
    await using client = await connect(`unix://${path}`);
    assertEquals(await client.list(), []);
    await daemon.stop("SIGKILL");
    daemon = await spawnDaemon(path);
    // The loss may not have been noticed yet: a read is tried again on a new connection.
    assertEquals(await client.list(), []);
    assertEquals((await client.peer.stats()).objects, 0);
  } finally {
    await daemon.stop();
  }
});

testInSocketDir(
  'connect("local") finds the daemon by PACKICE_TARGET, else the default socket',
  async (dir) => {
    const saved = { target: Deno.env.get("PACKICE_TARGET"), xdg: Deno.env.get("XDG_RUNTIME_DIR") };
    const restore = (name: string, value: string | undefined) =>
      value === undefined ? Deno.env.delete(name) : Deno.env.set(name, value);
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    try {
      Deno.env.delete("PACKICE_TARGET");
      Deno.env.set("XDG_RUNTIME_DIR", dir);
      assertEquals(localTarget(), `${dir}/packice.sock`);
      {
        await using client = await connect("local");
        await client.put("by default", { id: "d" });
      }
      Deno.env.set("XDG_RUNTIME_DIR", `${dir}/elsewhere`);
      Deno.env.set("PACKICE_TARGET", `unix://${daemon.path}`);
      {
        await using client = await connect("local");
        assertEquals(await client.has("d"), true);
      }
      Deno.env.set("PACKICE_TARGET", `${dir}/none.sock`);
      const error = await assertRejects(() => connect("local"), StoreUnavailableError);
      assert(error.message.includes("packice serve"), error.message);
      // connect() stays a private peer of this process.
      await using own = await connect();
      assertEquals(await own.has("d"), false);
    } finally {
      restore("PACKICE_TARGET", saved.target);
      restore("XDG_RUNTIME_DIR", saved.xdg);
    }
  },
);
