/**
 * Zero-copy sharing between real processes: a daemon (`cli.ts serve`) and
 * Deno child processes that write, read, attack sealed objects, crash while
 * holding leases, or sit idle by the thousand.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { connect } from "../../../mod.ts";
import { Errno } from "../../../native/errno.ts";
import { Linux } from "../../../native/ffi.ts";
import {
  type DaemonProcess,
  socketDir,
  spawnChild,
  spawnDaemon,
} from "../../helpers/uds_daemon.ts";
import { patternByte } from "../../helpers/uds_child.ts";

const MiB = 1024 * 1024;

/** Runs `fn` against a fresh daemon, and stops it after. */
function withDaemon(name: string, fn: (daemon: DaemonProcess) => Promise<void>) {
  Deno.test(name, async () => {
    const dir = await socketDir();
    try {
      await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--capacity", "1GiB"]);
      await fn(daemon);
      const status = await daemon.stop();
      assertEquals(status.code, 0, daemon.stderr());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

withDaemon(
  "a writer process seals an object and a reader process maps the same bytes",
  async ({ path }) => {
    const size = 3 * MiB + 17;
    await using writer = spawnChild(["write", path, "shared", String(size)]);
    const wrote = await writer.finish();
    assertEquals(wrote.status.code, 0, wrote.stderr);
    assertEquals(JSON.parse(wrote.stdout), { ok: true, writableMappings: 1 });
    await using reader = spawnChild(["read", path, "shared", String(size)]);
    const read = await reader.finish();
    assertEquals(read.status.code, 0, read.stderr);
    assertEquals(JSON.parse(read.stdout), {
      ok: true,
      detached: true,
      length: size,
      firstWrong: -1,
      readOnlyMappings: 1,
      mappingsAfterClose: 0,
    });
    // And this process sees the same bytes.
    await using client = await connect(path);
    using handle = await client.get("shared");
    assertEquals(handle.bytes[size - 1], patternByte("shared", size - 1));
  },
);

withDaemon("a reader that writes through its view dies with SIGSEGV", async ({ path }) => {
  await using client = await connect(path);
  await client.put(new Uint8Array(4096).fill(9), { id: "victim" });
  await using poker = spawnChild(["poke", path, "victim"]);
  assertEquals(await poker.line(), "mapped");
  const { status, stdout } = await poker.finish();
  assertEquals(status.signal, "SIGSEGV");
  assertEquals(stdout, "");
  using handle = await client.get("victim");
  assert(handle.bytes.every((byte) => byte === 9));
});

withDaemon("no process can change a sealed object through its memfd", async ({ path }) => {
  await using client = await connect(path);
  await client.put(new Uint8Array(8192).fill(4), { id: "sealed" });
  await using forger = spawnChild(["forge", path, "sealed"]);
  const { status, stdout, stderr } = await forger.finish();
  assertEquals(status.code, 0, stderr);
  const result = JSON.parse(stdout);
  const all = Linux.F_SEAL_WRITE | Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK | Linux.F_SEAL_SEAL;
  assertEquals(result.seals & all, all);
  assertEquals(result.mmapWritable, -Errno.EPERM, "a new writable mapping");
  assertEquals(result.write, -Errno.EPERM, "write() to the received fd");
  assertEquals(result.truncate, -Errno.EPERM, "shrinking");
  assertEquals(result.grow, -Errno.EPERM, "growing");
  assertEquals(result.unseal, -Errno.EPERM, "changing the seals");
  assert(result.reopen >= 0, "reopening /proc/self/fd/N read-write is allowed");
  assertEquals(result.reopenedWrite, -Errno.EPERM, "write() through the reopened fd");
  assertEquals(result.reopenedMmapWritable, -Errno.EPERM, "mapping the reopened fd writable");
  assertEquals(result.reopenedTruncate, -Errno.EPERM, "truncating the reopened fd");
  using handle = await client.get("sealed");
  assert(handle.bytes.every((byte) => byte === 4));
});

withDaemon("a client killed while holding leases leaves nothing behind", async ({ path }) => {
  await using client = await connect(path);
  await client.put(new Uint8Array(MiB).fill(1), { id: "held" });
  const before = await client.peer.stats();
  await using holder = spawnChild(["hold", path, "held"]);
  assertEquals(await holder.line(), "ready");
  const during = await client.peer.stats();
  assertEquals(during.leases, before.leases + 3);
  assertEquals(during.objects, before.objects + 1);
  const { status } = await holder.finish("SIGKILL");
  assertEquals(status.signal, "SIGKILL");
  await eventually(
    async () => (await client.peer.stats()).leases === before.leases,
    "the client's leases are gone",
  );
  const after = await client.peer.stats();
  assertEquals([after.objects, after.leases, after.bytes], [
    before.objects,
    before.leases,
    before.bytes,
  ]);
  using handle = await client.get("held");
  assertEquals(handle.size, MiB);
});

withDaemon("a thousand idle connections do not stop service", async ({ path }) => {
  // Each idle connection is an open file in the child and in the daemon; both raise their
  // soft limit to the hard one, which must leave room for a thousand (it does almost everywhere).
  await using idle = spawnChild(["idle", path, "1000"]);
  assertEquals(JSON.parse(await idle.line()), { ready: 1000 });
  await using client = await connect(path);
  const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => client.put(`busy ${i}`)));
  for (const [i, id] of ids.entries()) {
    using handle = await client.get(id);
    assertEquals(new TextDecoder().decode(handle.bytes), `busy ${i}`);
  }
  await idle.finish("SIGKILL");
  await eventually(
    async () => (await client.peer.stats()).leases === 0,
    "no lease is left",
  );
});
