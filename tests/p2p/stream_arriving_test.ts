import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { startCluster, TOKEN } from "./cluster_daemons.ts";
import { connect, NotFoundError, StoreUnavailableError } from "../../mod.ts";

const MiB = 1 << 20;

/** Reads `stream` whole, noting when its first chunk came. */
async function drain(stream: ReadableStream<Uint8Array>, started: number) {
  const chunks: Uint8Array[] = [];
  let first = Infinity;
  let length = 0;
  for await (const chunk of stream) {
    if (chunks.length === 0) first = performance.now() - started;
    chunks.push(chunk);
    length += chunk.length;
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return { bytes, first, last: performance.now() - started };
}

Deno.test("a reader streams an object a daemon is still fetching, first bytes long before the last", async () => {
  // 64 MiB from a holder that sends 32 MB/s: the transfer takes about 2 s.
  await using cluster = await startCluster(["a", "b"], {
    extra: ["--capacity", "160MiB", "--max-upload-rate", "32MB"],
  });
  const [a, b] = cluster.daemons as [typeof cluster.daemons[0], typeof cluster.daemons[0]];
  const bytes = pattern(64 * MiB, 21);
  {
    await using onA = await connect(a.socket);
    await onA.put(bytes, { id: "weights", meta: { kind: "weights" } });
  }
  await using onB = await connect(b.url, { token: TOKEN });
  const started = performance.now();
  await using arriving = await onB.open("weights");
  assertEquals(arriving.info.state, "CREATING");
  assertEquals(arriving.size, bytes.length);
  assertEquals(arriving.meta, { kind: "weights" });
  const read = await drain(arriving.stream(), started);
  assert(sameBytes(read.bytes, bytes), "the streamed bytes are the object's");
  assert(
    read.first < read.last / 2,
    `first bytes after ${read.first.toFixed(0)} ms, the last after ${read.last.toFixed(0)} ms`,
  );
  // `bytes` waits for the seal: the copy is b's now, read locally.
  assert(sameBytes(await arriving.bytes(), bytes));
  assertEquals(await b.metric("packice_cluster_fetches_total"), 1);
});

Deno.test("a reader on the Unix socket streams an object as it arrives", async () => {
  await using cluster = await startCluster(["a", "b"], {
    extra: ["--capacity", "160MiB", "--max-upload-rate", "32MB"],
  });
  const [a, b] = cluster.daemons as [typeof cluster.daemons[0], typeof cluster.daemons[0]];
  const bytes = pattern(64 * MiB, 23);
  {
    await using onA = await connect(a.socket);
    await onA.put(bytes, { id: "weights" });
  }
  await using onB = await connect(b.socket);
  const started = performance.now();
  await using arriving = await onB.open("weights");
  assertEquals(arriving.info.state, "CREATING");
  const read = await drain(arriving.stream(), started);
  assert(sameBytes(read.bytes, bytes), "the streamed bytes are the object's");
  assert(
    read.first < read.last / 2,
    `first bytes after ${read.first.toFixed(0)} ms, the last after ${read.last.toFixed(0)} ms`,
  );
  // Sealed now: `bytes` maps the daemon's copy.
  assert(sameBytes(await arriving.bytes(), bytes));
});

Deno.test("a stream of an object whose only holder dies mid-transfer fails with a typed error", async () => {
  await using cluster = await startCluster(["a", "b"], {
    extra: ["--capacity", "160MiB", "--max-upload-rate", "16MB"],
  });
  const [a, b] = cluster.daemons as [typeof cluster.daemons[0], typeof cluster.daemons[0]];
  const bytes = pattern(64 * MiB, 22);
  {
    await using onA = await connect(a.socket);
    await onA.put(bytes, { id: "doomed" });
  }
  // One reader over HTTP, one over the Unix socket.
  await using onB = await connect(b.url, { token: TOKEN });
  await using onSocket = await connect(b.socket);
  await using arriving = await onB.open("doomed");
  await using local = await onSocket.open("doomed");
  assertEquals(local.info.state, "CREATING");
  const reader = arriving.stream().getReader();
  const localReader = local.stream().getReader();
  for (const one of [reader, localReader]) {
    const first = await one.read();
    assert(!first.done && first.value.length > 0);
    // Only verified bytes came: they are the object's.
    assert(sameBytes(first.value, bytes.subarray(0, first.value.length)));
  }
  await a.signal("SIGKILL");
  await assertRejects(async () => {
    while (!(await reader.read()).done) { /* the bytes that verified before the kill */ }
  }, StoreUnavailableError);
  await assertRejects(async () => {
    while (!(await localReader.read()).done) { /* as over HTTP */ }
  }, NotFoundError);
  // Nothing unverified was sealed on b: the object is not there.
  await assertRejects(() => onB.get("doomed", { local: true }), NotFoundError);
});
