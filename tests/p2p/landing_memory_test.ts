// The Range receiver landing a body in a memfd whose memory runs out: a
// receiver (tests/helpers/landing_child.c, in C so that it needs no memory
// of its own meanwhile) runs in a memory cgroup (v1) with room for part of
// the body and its OOM killer off, so a page the kernel cannot charge is
// refused rather than taken by killing a process. pwrite then fails with
// ENOMEM, which pk_http_recv_fd reports as the write's errno (CAPACITY_EXCEEDED
// in JS: see landing_test.ts), never SIGBUS and never a wait. A whole daemon
// cannot be tested this way: its JS thread, too, waits in a page fault for
// memory the cgroup no longer has. Needs root and a cgroup v1 memory
// hierarchy; elsewhere (cgroup v2 runners, non-root) it is skipped with a notice.
import { assertEquals } from "../helpers/assert.ts";
import { CapacityExceededError } from "../../core/errors.ts";
import { Errno, errnoError } from "../../native/errno.ts";
import { loadNative } from "../../native/load.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";

const ROOT = "/sys/fs/cgroup/memory";
const LENGTH = 64 << 20;

function cgroupsWritable(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync(`${ROOT}/memory.oom_control`).isFile;
  } catch {
    return false;
  }
}

const ignore = !cgroupsWritable();
if (ignore) {
  console.warn(
    `landing_memory_test: skipped, it needs root and a cgroup v1 memory hierarchy at ${ROOT}`,
  );
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

/** Runs the C receiver for a body of LENGTH bytes from `port`, in `cgroup` if given. */
async function receive(child: string, port: number, cgroup?: string): Promise<string> {
  const lib = loadNative()!.path;
  const command = cgroup === undefined
    ? new Deno.Command(child, { args: [lib, String(port), String(LENGTH)], stdout: "piped" })
    : new Deno.Command("sh", {
      args: [
        "-c",
        'echo $$ > "$0/cgroup.procs" && exec "$@"',
        cgroup,
        child,
        lib,
        String(port),
        String(LENGTH),
      ],
      stdout: "piped",
    });
  const process = command.spawn();
  // Should it ever wait for memory instead, the limit goes and the test fails rather than hangs.
  let waited = false;
  const watchdog = setTimeout(() => {
    waited = true;
    if (cgroup !== undefined) Deno.writeTextFileSync(`${cgroup}/memory.limit_in_bytes`, "-1");
  }, 20_000);
  const { code, stdout } = await process.output();
  clearTimeout(watchdog);
  assertEquals(waited, false, "the receiver waited for memory");
  assertEquals(code, 0);
  return new TextDecoder().decode(stdout).trim();
}

Deno.test({
  name: "a body landing in a memfd with no memory left ends with ENOMEM from the write, not SIGBUS",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-landing-memory-" });
    const cgroup = `${ROOT}/packice-landing-test-${Deno.pid}`;
    try {
      const child = `${dir}/landing_child`;
      const built = await new Deno.Command("cc", {
        args: ["-O2", "-o", child, new URL("../helpers/landing_child.c", import.meta.url).pathname],
        stderr: "inherit",
      }).output();
      assertEquals(built.code, 0);
      const body = new Uint8Array(LENGTH).fill(7);
      await using server = scriptedServer(async (_request, conn) => {
        await writeAll(
          conn,
          new TextEncoder().encode(`HTTP/1.1 206 X\r\ncontent-length: ${LENGTH}\r\n\r\n`),
        );
        // The receiver stops reading once a write fails: the rest may not go.
        await writeAll(conn, body).catch(() => {});
        return false;
      });
      // With memory enough, the whole body lands.
      assertEquals(await receive(child, server.port), `result ${LENGTH} write_error 0`);
      Deno.mkdirSync(cgroup);
      Deno.writeTextFileSync(`${cgroup}/memory.limit_in_bytes`, String(16 << 20));
      Deno.writeTextFileSync(`${cgroup}/memory.oom_control`, "1");
      assertEquals(
        await receive(child, server.port, cgroup),
        `result -${Errno.ENOMEM} write_error ${Errno.ENOMEM}`,
      );
      assertEquals(Number(Deno.readTextFileSync(`${cgroup}/memory.failcnt`)) > 0, true);
      // What RangeConnection.recvFd throws for it.
      assertEquals(errnoError(Errno.ENOMEM, "pwrite") instanceof CapacityExceededError, true);
    } finally {
      try {
        Deno.removeSync(cgroup);
      } catch {
        // Not made, or the test failed before its receiver left it.
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
