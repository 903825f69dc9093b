/**
 * A file or tiered (`--mode store`) daemon SIGKILLed while clients put objects
 * without pause, over its Unix socket and over HTTP, keeps every object whose
 * put returned: after a restart on the same data directory each one reads back
 * with the digest recorded at its put, and nothing unfinished or torn is listed.
 */
import { createHash } from "node:crypto";
import { type Client, connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const KiB = 1024;

function digestOf(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Puts objects of 1 KiB to 2 MiB until a put fails; records what was attempted and acknowledged. */
async function putUntilFailure(
  client: Client,
  prefix: string,
  attempted: Map<string, string>,
  acknowledged: Map<string, string>,
): Promise<unknown> {
  for (let i = 0;; i++) {
    const body = new Uint8Array(KiB << (i % 12));
    for (let at = 0; at < body.length; at += 65536) {
      crypto.getRandomValues(body.subarray(at, at + 65536));
    }
    const id = `${prefix}${i}`;
    attempted.set(id, digestOf(body));
    try {
      await client.put(body, { id });
    } catch (error) {
      return error;
    }
    acknowledged.set(id, digestOf(body));
  }
}

for (
  const [impl, flags] of [
    ["fs", ["--impl", "fs"]],
    ["tiered --mode store", ["--impl", "tiered", "--mode", "store", "--hot", "4MiB"]],
  ] as const
) {
  testInSocketDir(
    `a ${impl} daemon SIGKILLed mid-put keeps every acknowledged object`,
    async (dir) => {
      const socket = `${dir}/packice.sock`;
      const args = ["--data-dir", `${dir}/data`, ...flags];
      const token = crypto.randomUUID();
      const port = freePort();
      const daemon = await spawnDaemon(socket, [
        ...args,
        "--http",
        `127.0.0.1:${port}`,
        "--token",
        token,
      ]);
      const attempted = new Map<string, string>();
      const acknowledged = new Map<string, string>();
      const uds = await connect(socket);
      const http = await connect(`http://127.0.0.1:${port}`, { token });
      try {
        const writers = [
          putUntilFailure(uds, "uds.", attempted, acknowledged),
          putUntilFailure(http, "http.", attempted, acknowledged),
        ];
        // Long enough for demotions under a 4 MiB memory tier, short enough for the suite.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assertEquals((await daemon.stop("SIGKILL")).signal, "SIGKILL");
        await Promise.all(writers);
      } finally {
        await uds.close();
        await http.close();
      }
      const countOf = (prefix: string) =>
        [...acknowledged.keys()].filter((id) => id.startsWith(prefix)).length;
      assert(countOf("uds.") > 5 && countOf("http.") > 5, `too few puts: ${acknowledged.size}`);

      await using again = await spawnDaemon(socket, args);
      await using client = await connect(socket);
      for (const [id, digest] of acknowledged) {
        using handle = await client.get(id);
        assertEquals(digestOf(handle.bytes), digest, `acknowledged object ${id} changed`);
      }
      // What was written but not acknowledged is whole or absent.
      for (const info of await client.list()) {
        assertEquals(info.state, "SEALED", `${info.id} is listed unsealed`);
        using handle = await client.get(info.id);
        assertEquals(digestOf(handle.bytes), attempted.get(info.id), `${info.id} is torn`);
      }
      await client.close();
      assertEquals((await again.stop()).code, 0, again.stderr());
    },
  );
}
