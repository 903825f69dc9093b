import { Access, CapacityExceededError, connect, FileSystemPeer } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { closeAlso } from "../helpers/close_also.ts";
import { lifecycleSuite } from "../helpers/lifecycle_suite.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "packice-fs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

lifecycleSuite("FileSystemPeer", {}, async (clock) => {
  const dir = await Deno.makeTempDir({ prefix: "packice-fs-" });
  const peer = await FileSystemPeer.open({ dir, clock, sweepInterval: 0 });
  return closeAlso(peer, () => Deno.remove(dir, { recursive: true }));
});

Deno.test("FileSystemPeer finds sealed objects after a restart and drops unfinished ones", async () => {
  await withDir(async (dir) => {
    {
      await using peer = await FileSystemPeer.open({ dir, sweepInterval: 0 });
      await using client = await connect(peer);
      await client.put("survives", { id: "kept", meta: { kind: "text" } });
      const writer = await client.create(10, { id: "unfinished" });
      await writer.write(new Uint8Array(5));
      // The peer closes with the creation still open, as a crash would leave it.
    }
    await using peer = await FileSystemPeer.open({ dir, sweepInterval: 0 });
    await using client = await connect(peer);
    assertEquals((await client.list()).map((o) => o.id), ["kept"]);
    assertEquals(await client.has("unfinished"), false);
    const info = await client.stat("kept");
    assertEquals([info.state, info.size, info.meta], ["SEALED", 8, { kind: "text" }]);
    using handle = await client.get("kept");
    assertEquals(new TextDecoder().decode(handle.bytes), "survives");
    assertEquals((await peer.stats()).bytes, 8);
    const { lease } = await peer.acquire("unfinished", Access.CREATE, { size: 1 });
    await peer.release(lease.id);
  });
});

Deno.test("FileSystemPeer refuses objects beyond its capacity", async () => {
  await withDir(async (dir) => {
    await using peer = await FileSystemPeer.open({ dir, capacity: 100, sweepInterval: 0 });
    await using client = await connect(peer);
    await client.put(new Uint8Array(80));
    await assertRejects(() => client.put(new Uint8Array(30)), CapacityExceededError);
    assert((await peer.stats()).bytes <= 100);
  });
});
