/**
 * `stat` and `HEAD` of an object still on its way to a daemon, fetched from
 * another daemon or read through from an origin, answer its state CREATING
 * and what is known (its size once its blob is made), over the Unix socket,
 * over HTTP and in process, instead of NOT_FOUND.
 */
import { ClusterPeer, connect, MemoryPeer, type ObjectInfo, originId } from "../../mod.ts";
import { Assembly } from "../../p2p/origin/assembly.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { type ClusterDaemon, converged, startCluster, TOKEN } from "./cluster_daemons.ts";
import { startCountingOrigin } from "./counting_origin.ts";
import { inProcessCluster } from "./in_process_cluster.ts";

const auth = { authorization: `Bearer ${TOKEN}` };

/** The object as the daemon's socket, its HTTP info and its HEAD tell it. */
async function seen(daemon: ClusterDaemon, id: string) {
  await using client = await connect(daemon.socket);
  const socket = await client.stat(id).catch((error) => error.code as string);
  const info = await fetch(`${daemon.url}/v1/objects/${id}/info`, { headers: auth });
  const http = info.ok ? await info.json() as ObjectInfo : (await info.body?.cancel(), info.status);
  const head = await fetch(`${daemon.url}/v1/objects/${id}`, { method: "HEAD", headers: auth });
  return { socket, http, head };
}

/**
 * Waits until all three say CREATING of each of `ids` at once, and checks
 * what they say of the size.
 */
async function creating(daemon: ClusterDaemon, ids: readonly string[], size: number | undefined) {
  let last: unknown;
  const says = async (id: string) => {
    const { socket, http, head } = last = await seen(daemon, id);
    if (typeof socket === "string" || socket.state !== "CREATING") return false;
    if (typeof http === "number" || head.headers.get("packice-state") !== "CREATING") return false;
    if (size !== undefined && socket.blobSizes.length === 0) return false;
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("etag"), null);
    for (const info of [socket, http]) {
      assertEquals(info.id, id);
      assertEquals(info.size, size ?? 0);
      assertEquals(info.blobSizes, size === undefined ? [] : [size]);
    }
    assertEquals(
      head.headers.get("content-length"),
      size === undefined ? null : String(size),
    );
    return true;
  };
  await eventually(
    async () => (await Promise.all(ids.map(says))).every(Boolean),
    `${ids} on their way to ${daemon.node}`,
    { timeout: 10_000, interval: 20 },
  ).catch((error) => {
    throw new Error(`${error.message}: last seen ${JSON.stringify(last)}`, { cause: error });
  });
}

Deno.test("stat and HEAD of objects on their way to a daemon: CREATING, their size once known", async () => {
  const sized = pattern(16 << 20, 51);
  await using origin = startCountingOrigin({ body: sized, rate: 8e6 });
  await using chunked = startCountingOrigin({
    body: pattern(8 << 20, 52),
    rate: 4e6,
    chunked: true,
  });
  await using cluster = await startCluster(["a"]);
  const a = cluster.daemons[0]!;
  const b = await cluster.add("b", ["--max-download-rate", "8MB", "--transfer-budget", "16MiB"]);
  await converged(cluster.daemons);
  await using clientA = await connect(a.socket);
  await using clientB = await connect(b.socket);
  // Read through from an origin that states its length: the size as soon as the blob is made.
  const reading = clientA.fetch(origin.url).then((response) => response.arrayBuffer());
  await creating(a, [originId(origin.url)], sized.length);
  // A body of no stated length: no size while it is spooled.
  const spooling = clientA.fetch(chunked.url).then((response) => response.arrayBuffer());
  await creating(a, [originId(chunked.url)], undefined);
  await Promise.all([reading, spooling]);
  // Fetched from another daemon: two at once in a budget of one, the second waiting for room
  // with its size known, before its blob is made.
  await clientA.put(pattern(16 << 20, 53), { id: "on-its-way" });
  await clientA.put(pattern(16 << 20, 54), { id: "waiting" });
  const getting = ["on-its-way", "waiting"].map((id) => clientB.get(id));
  await creating(b, ["on-its-way", "waiting"], 16 << 20);
  for (const handle of await Promise.all(getting)) handle[Symbol.dispose]();
  for (const [daemon, id] of [[a, originId(origin.url)], [b, "waiting"]] as const) {
    const { socket, head } = await seen(daemon, id);
    assertEquals((socket as ObjectInfo).state, "SEALED");
    assertEquals(head.headers.get("packice-state"), null);
    assert(head.headers.get("etag") !== null);
  }
  // Nothing on its way: NOT_FOUND, as before.
  const { socket, http, head } = await seen(b, "nowhere");
  assertEquals([socket, http, head.status], ["NOT_FOUND", 404, 404]);
});

Deno.test("in process: a cluster peer's stat of an object expected, before and after its blob", async () => {
  await using cluster = await inProcessCluster(["solo"]);
  const member = cluster.members[0]!;
  await using peer = new ClusterPeer({
    home: new MemoryPeer({ capacity: 1 << 20 }),
    replicas: new MemoryPeer({ capacity: 1 << 20 }),
    directory: member.directory,
    node: member.node,
  });
  const missing = await peer.stat("later").then(() => undefined, (error) => error.code);
  assertEquals(missing, "NOT_FOUND");
  {
    using _expected = peer.expect("later");
    const info = await peer.stat("later");
    assertEquals([info.state, info.size, info.blobSizes], ["CREATING", 0, []]);
    {
      // Its size known (an origin's Content-Length), its blob not made yet.
      using _sized = peer.expect("later", 5);
      const sized = await peer.stat("later");
      assertEquals([sized.state, sized.size, sized.blobSizes], ["CREATING", 5, [5]]);
    }
    let during: ObjectInfo | undefined;
    await peer.assemble("later", 5, { a: 1 }, async (view) => {
      during = await peer.stat("later");
      view.set(new TextEncoder().encode("hello"));
      const assembly = new Assembly("later", 5, view);
      await assembly.hashed(0);
      return await assembly.record();
    });
    assertEquals(
      [during?.state, during?.size, during?.blobSizes, during?.meta],
      ["CREATING", 5, [5], { a: 1 }],
    );
  }
  assertEquals((await peer.stat("later")).state, "SEALED");
});
