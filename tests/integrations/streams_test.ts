import { type Client, ClosedError, connect } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";

const MiB = 1 << 20;

async function streamSteps(t: Deno.TestContext, client: Client): Promise<void> {
  const leases = async () => (await client.peer.stats()).leases;
  const id = await client.put(new Uint8Array(4 * MiB).map((_, i) => i % 251));

  await t.step("handle.stream() reads nothing ahead of its reader", async () => {
    const handle = await client.get(id);
    let copies = 0;
    const view = handle.blobs[0]!;
    // A chunk is copied out of a slice or a subarray of the view.
    for (const name of ["slice", "subarray"] as const) {
      const cut = view[name].bind(view);
      Object.defineProperty(view, name, {
        value: (start?: number, end?: number) => (copies++, cut(start, end)),
      });
    }
    const reader = handle.stream().getReader();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertEquals(copies, 0);
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertEquals(copies, 1);
    await reader.cancel();
  });

  await t.step("handle.stream() cancelled releases the lease", async () => {
    await eventually(async () => (await leases()) === 0, "no lease is held");
    const handle = await client.get(id);
    const reader = handle.stream().getReader();
    await reader.read();
    await reader.cancel();
    assert(handle.closed);
    await eventually(async () => (await leases()) === 0, "the lease ends");
  });

  await t.step("a reader that stops early leaks nothing", async () => {
    const handle = await client.get(id);
    for await (const chunk of handle.stream()) {
      assertEquals(chunk.length, MiB);
      break;
    }
    assert(handle.closed);
    await eventually(async () => (await leases()) === 0, "the lease ends");
  });

  await t.step("a stream read to the end has every byte and ends the lease", async () => {
    const handle = await client.get(id);
    const bytes = new Uint8Array(await new Response(handle.stream()).arrayBuffer());
    assertEquals(bytes.length, 4 * MiB);
    assertEquals(bytes[4 * MiB - 1], (4 * MiB - 1) % 251);
    assert(handle.closed);
    await eventually(async () => (await leases()) === 0, "the lease ends");
  });

  await t.step(
    "closing the handle mid-stream fails the stream instead of ending it short",
    async () => {
      const handle = await client.get(id);
      const reader = handle.stream().getReader();
      await reader.read();
      await handle.close();
      await assertRejects(() => reader.read(), ClosedError);
    },
  );

  await t.step("put(stream) rejects with the stream's error and stores nothing", async () => {
    const before = (await client.list()).length;
    const failing = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(10));
        controller.error(new RangeError("source broke"));
      },
    });
    await assertRejects(() => client.put(failing, { id: "broken" }), RangeError, "source broke");
    assertEquals(await client.has("broken"), false);
    assertEquals((await client.list()).length, before);
    await eventually(async () => (await leases()) === 0, "no lease is left");
  });

  await t.step("put(stream) of a bad chunk rejects and cancels its source", async () => {
    let cancelled = false;
    const bad = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue("not bytes" as unknown as Uint8Array);
      },
      cancel() {
        cancelled = true;
      },
    });
    await assertRejects(() => client.put(bad, { id: "bad" }), Error);
    assert(cancelled, "the source was cancelled");
    assertEquals(await client.has("bad"), false);
  });

  await t.step("put(stream) stores what a stream of many chunks carries", async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => new Uint8Array(64 << 10).fill(i));
    const stored = await client.put(ReadableStream.from(chunks));
    using handle = await client.get(stored);
    assertEquals(handle.size, 4 * MiB);
    assertEquals(handle.bytes[4 * MiB - 1], 63);
  });
  await client.delete(id);
}

Deno.test("Web Streams of a client in process behave as streams users expect", async (t) => {
  await using client = await connect();
  await streamSteps(t, client);
});

Deno.test("Web Streams over a Unix socket daemon behave as streams users expect", async (t) => {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    await using client = await connect(daemon.path);
    await streamSteps(t, client);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a matched body dropped unread ends its lease once it is garbage", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("gc_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(output.stderr), "");
  assertEquals(new TextDecoder().decode(output.stdout), "10 0\n");
});
