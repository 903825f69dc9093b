import { connect, HeapBlobStore, MemoryPeer, serveHttp } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const child = new URL("../helpers/sealed_write_child.ts", import.meta.url).pathname;
const MESSAGE = "wrote into the read-only memory of a sealed object";

async function run(args: string[], v8Flags: string[] = []) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...v8Flags, child, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    ...output,
    out: new TextDecoder().decode(output.stdout),
    err: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("a write into the bytes of a small sealed object in process leaves the object as it was", async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  await using client = await connect(peer);
  const id = await client.put("hello");
  {
    using handle = await client.get(id);
    handle.bytes[0] = 74;
  }
  using handle = await client.get(id);
  assertEquals(new TextDecoder().decode(handle.bytes), "hello");
});

Deno.test("a write into a view of a sealed heap blob leaves the blob as it was", async () => {
  const store = new HeapBlobStore({ capacity: 1024 });
  const info = {
    id: "h",
    state: "CREATING",
    size: 5,
    blobSizes: [5],
    meta: {},
    createdAt: 0,
  } as const;
  const stored = await store.allocate(info);
  const blob = stored.blobs[0]!;
  await blob.write(0, new TextEncoder().encode("hello"));
  await store.seal(stored, info);
  const view = blob.openView()!;
  view[0] = 74;
  blob.closeView(view);
  assertEquals(view.length, 0);
  assertEquals(new TextDecoder().decode(await blob.read(0, 5)), "hello");
  await store.close();
});

Deno.test("with immutable ArrayBuffers on, a write into a small sealed object throws a TypeError", async () => {
  const { out, code } = await run(["local", "5"], ["--v8-flags=--js-immutable-arraybuffer"]);
  assertEquals(code, 0, out);
  assert(out.includes("threw: TypeError"), out);
  assert(out.includes("object: 104"), out);
});

Deno.test("a write into a large sealed object in process ends the process with a message", async () => {
  const { out, err, signal } = await run(["local", String(1 << 20)]);
  assertEquals(signal, "SIGSEGV");
  assert(out.includes("writing") && !out.includes("wrote"), out);
  assert(err.includes(MESSAGE), err);
});

testInSocketDir(
  "a write into a sealed object mapped from a daemon ends the writer with a message, not the daemon",
  async (dir) => {
    const path = `${dir}/p.sock`;
    await using _daemon = await spawnDaemon(path);
    await using client = await connect(path);
    for (const size of [5, 1 << 20]) {
      const id = await client.put(new Uint8Array(size).fill(104));
      const { err, signal } = await run(["socket", path, id]);
      assertEquals(signal, "SIGSEGV");
      assert(err.includes(MESSAGE), err);
      using handle = await client.get(id);
      assertEquals(handle.bytes[0], 104);
    }
  },
);

Deno.test("a write into the bytes of an object read over HTTP leaves the object as it was", async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  await using server = serveHttp(peer, { port: 0 });
  await using client = await connect(server.url);
  const id = await client.put("hello");
  {
    using handle = await client.get(id);
    handle.bytes[0] = 74;
  }
  using handle = await client.get(id);
  assertEquals(new TextDecoder().decode(handle.bytes), "hello");
});
