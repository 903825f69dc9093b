import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { type Entries, memoryDirectory } from "../helpers/memory_directory.ts";
import { ClusterPeer, connect, MemoryPeer, serveHttp } from "../../mod.ts";
import type { ObjectInfo } from "../../core/object.ts";

const TOKEN = "in-process";
const MiB = 1 << 20;

/** A memory peer whose seals wait until `open` is called: a relay's seal that takes long. */
class SlowSeals extends MemoryPeer {
  readonly reached: Promise<void>;
  #reached!: () => void;
  #gate: Promise<void>;
  open!: () => void;

  constructor() {
    super({ capacity: 64 * MiB });
    this.reached = new Promise((resolve) => this.#reached = resolve);
    this.#gate = new Promise((resolve) => this.open = resolve);
  }

  override async seal(leaseId: string): Promise<ObjectInfo> {
    this.#reached();
    await this.#gate;
    return await super.seal(leaseId);
  }
}

Deno.test("a relay serves its pieces through its seal: no gap between its last piece and its sealed copy", async () => {
  const entries: Entries = new Map();
  const peer = (node: string, replicas: MemoryPeer) =>
    new ClusterPeer({
      home: new MemoryPeer({ capacity: 64 * MiB }),
      replicas,
      directory: memoryDirectory(entries),
      node,
      token: TOKEN,
    });
  const a = peer("a", new MemoryPeer({ capacity: 64 * MiB }));
  const slow = new SlowSeals();
  const b = peer("b", slow);
  await using onA = await connect(a);
  await using onB = await connect(b);
  // Both ways of sending a piece: through Deno.serve, and by ticket from the native listener.
  const serverA = serveHttp(a, { port: 0, token: TOKEN });
  const serverB = serveHttp(b, { port: 0, token: TOKEN, fastGet: { port: 0 } });
  try {
    a.address = serverA.url;
    b.address = serverB.url;
    const bytes = pattern(12 * MiB, 41);
    await onA.put(bytes, { id: "w" });
    const got = onB.get("w");
    // Every piece is in at b, and its seal has begun: b is still a partial holder.
    await slow.reached;
    const headers = { authorization: `Bearer ${TOKEN}`, range: `bytes=${4 * MiB}-${8 * MiB - 1}` };
    for (const base of [serverB.url, serverB.fastUrl!]) {
      const response = await fetch(`${base}/v1/objects/w?local=1`, { headers });
      const body = new Uint8Array(await response.arrayBuffer());
      assertEquals(response.status, 206, `asked at ${base}: ${new TextDecoder().decode(body)}`);
      assert(sameBytes(body, bytes.subarray(4 * MiB, 8 * MiB)), `the piece's bytes from ${base}`);
    }
    slow.open();
    using handle = await got;
    assert(sameBytes(handle.bytes, bytes));
    // Sealed and announced: served as any sealed copy.
    const response = await fetch(`${serverB.url}/v1/objects/w?local=1`, { headers });
    assertEquals(response.status, 206);
    await response.body?.cancel();
  } finally {
    slow.open();
    await serverB.close();
    await serverA.close();
    await b.close();
    await a.close();
  }
});
