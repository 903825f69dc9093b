/**
 * The pool of memfds prepared for new objects is given back once the peer
 * goes idle, and `metrics()` and `/metrics` count it.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { connect, MemoryPeer, serveHttp, TieredPeer } from "../../mod.ts";
import { loadNative } from "../../native/load.ts";

const MiB = 1 << 20;

/** Lets timers due now run: the pool refills a size class on the next macrotask. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function poolOf(peer: MemoryPeer): Promise<[number, number]> {
  const metrics = await peer.metrics();
  return [metrics.memory_pool_bytes!, metrics.memory_pool_memfds!];
}

Deno.test({
  name: "an idle peer gives its prepared memfds back, and its metrics count them",
  ignore: loadNative() === undefined,
  fn: async () => {
    await using peer = new MemoryPeer({ capacity: 256 * MiB, poolIdleMs: 400 });
    await using client = await connect(peer);
    const server = serveHttp(peer, { port: 0 });
    try {
      const scrape = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const value = (name: string) =>
          Number(text.match(new RegExp(`^${name} (\\d+)$`, "m"))?.[1]);
        return [value("packice_memory_pool_bytes"), value("packice_memory_pool_memfds")];
      };
      assertEquals(await poolOf(peer), [0, 0]);
      for (let round = 0; round < 2; round++) {
        // Sampled while in use, when the pool cannot have gone idle.
        let most = 0;
        for (let i = 0; i < 6; i++) {
          await client.put(new Uint8Array(MiB), { id: `o${i}` });
          await turn();
          const [bytes, memfds] = await poolOf(peer);
          assert(bytes >= memfds * MiB, `${bytes} bytes in ${memfds} memfds`);
          most = Math.max(most, memfds);
        }
        for (let i = 0; i < 6; i++) {
          await client.delete(`o${i}`);
          most = Math.max(most, (await poolOf(peer))[1]);
        }
        assert(most > 0, "the pool held memfds while in use");
        await eventually(
          async () => (await poolOf(peer))[0] === 0,
          "the idle pool is empty",
          { timeout: 10_000 },
        );
        assertEquals(await poolOf(peer), [0, 0]);
        assertEquals(await scrape(), [0, 0]);
      }
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "an idle tiered peer gives its prepared memory back, and its metrics count it",
  ignore: loadNative() === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "packice-pool-" });
    try {
      await using peer = await TieredPeer.open({
        dir,
        hotCapacity: 64 * MiB,
        coldCapacity: 64 * MiB,
        poolIdleMs: 400,
      });
      await using client = await connect(peer);
      const pooled = async () => (await peer.metrics()).memory_pool_bytes!;
      let most = 0;
      for (let i = 0; i < 4; i++) {
        await client.put(new Uint8Array(MiB), { id: `o${i}` });
        await turn();
        most = Math.max(most, await pooled());
      }
      for (let i = 0; i < 4; i++) {
        await client.delete(`o${i}`);
        most = Math.max(most, await pooled());
      }
      assert(most > 0, "the pool held memory while in use");
      await eventually(async () => await pooled() === 0, "the idle pool is empty", {
        timeout: 10_000,
      });
      assertEquals((await peer.metrics()).memory_pool_memfds, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
