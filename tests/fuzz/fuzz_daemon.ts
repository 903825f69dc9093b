/**
 * A daemon to fuzz: `cli.ts serve` in its own process on a socket and on
 * HTTP, holding a few sealed objects that no fuzz case may change, and the
 * checks each case ends with.
 */
import { type Client, connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { type DaemonProcess, socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";

/** Ids of the sealed objects: characters no generator of the fuzz tests produces. */
export const SEED_IDS = ["kept\u2603a", "kept\u2603b", "kept\u2603empty"] as const;

/** A fuzzed daemon and a well-behaved client of it. */
export interface FuzzDaemon extends AsyncDisposable {
  readonly socket: string;
  /** The HTTP base URL. */
  readonly http: string;
  /** `Bearer <token>`: the token the daemon made, from its token file. */
  readonly authorization: string;
  /** A client on the socket, for the checks. */
  readonly client: Client;
  readonly daemon: DaemonProcess;
  /**
   * Ends a case: the daemon is alive, every lease is gone, no object is left
   * but the seeds and sealed ones the case may have made (at most
   * `mayHaveMade`, all removed here), and the seeds are unchanged.
   */
  settle(mayHaveMade: number): Promise<void>;
  /** After a failed case: removes what it left, as far as it can, for the cases that follow. */
  reset(): Promise<void>;
}

/** The seeds' bytes: a pattern, a page of it, and nothing. */
function seedBytes(index: number): Uint8Array<ArrayBuffer> {
  const length = [4096 + 7, 100, 0][index]!;
  return new Uint8Array(length).map((_, i) => (i * 31 + index * 7) & 255);
}

async function digestOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A free TCP port on loopback (closed again at once; the daemon binds it right after). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Checks the daemon logged no error from `from` to `to` in its log: an
 * unexpected failure (INTERNAL) is logged as one.
 */
function assertNoErrors(daemon: DaemonProcess, from: number, to?: number): void {
  const errors = daemon.stderr().slice(from, to).split("\n").filter((line) => / ERROR /.test(line));
  assertEquals(errors, [], "the daemon logged errors");
}

/** Where a fuzzed daemon keeps its objects. */
export type FuzzImpl = "mem" | "fs" | "tiered";

/**
 * The kinds of peer to fuzz: memory in `deno task test`, and files and
 * tiers too in `deno task fuzz`.
 */
export const FUZZ_IMPLS: readonly FuzzImpl[] = Deno.env.get("PACKICE_FUZZ_LONG") === "1"
  ? ["mem", "fs", "tiered"]
  : ["mem"];

/** The flags of each kind of peer: small budgets, so sizes past them are tried too. */
function implFlags(impl: FuzzImpl, dir: string): string[] {
  switch (impl) {
    case "mem":
      return ["--capacity", "256MiB"];
    case "fs":
      return ["--impl", "fs", "--data-dir", `${dir}/data`, "--capacity", "256MiB"];
    case "tiered":
      return [
        "--impl",
        "tiered",
        "--data-dir",
        `${dir}/data`,
        "--hot",
        "32MiB",
        "--cold",
        "256MiB",
      ];
  }
}

/**
 * Starts the daemon and puts the seeds. With `fast`, it has a native GET
 * listener (`--http-fast`), and `http` is the listener's URL: every request
 * goes through it. With `alone`, it has no HTTP (`http` and `authorization`
 * are empty): a daemon of no cluster, whose peer is the one the Unix
 * socket's native gets serve (a cluster's peer does not offer them).
 */
export async function startFuzzDaemon(
  impl: FuzzImpl,
  fast = false,
  alone = false,
): Promise<FuzzDaemon> {
  const dir = await socketDir();
  const socket = `${dir}/packice.sock`;
  const port = freePort();
  const fastPort = fast ? freePort() : undefined;
  const daemon = await spawnDaemon(socket, [
    ...(alone ? [] : ["--http", `127.0.0.1:${port}`]),
    ...(fastPort === undefined ? [] : ["--http-fast", `127.0.0.1:${fastPort}`]),
    ...implFlags(impl, dir),
  ]);
  let exited = false;
  daemon.process.status.then(() => exited = true);
  const client = await connect(socket);
  const digests: string[] = [];
  for (const [index, id] of SEED_IDS.entries()) {
    const bytes = seedBytes(index);
    await client.put(bytes, { id, meta: { "content-type": "text/plain", seed: index } });
    digests.push(await digestOf(bytes));
  }
  const http = alone ? "" : `http://127.0.0.1:${fastPort ?? port}`;
  const token = alone ? "" : (await Deno.readTextFile(`${socket}.token`)).split("\n")[0]!;
  if (!alone) {
    await eventually(async () => {
      try {
        return (await fetch(`${http}/healthz`)).ok;
      } catch {
        return false;
      }
    }, "the daemon answers on HTTP");
  }

  let logged = daemon.stderr().length;
  const settle = async (mayHaveMade: number) => {
    assert(!exited, `the daemon died: ${daemon.stderr()}`);
    // Each case answers for what was logged while it ran, even when it fails.
    const from = logged;
    logged = daemon.stderr().length;
    assertNoErrors(daemon, from, logged);
    await eventually(
      async () => (await client.peer.stats()).leases === 0,
      "every lease of the case is gone",
    );
    const extra = (await client.list()).filter((info) =>
      !(SEED_IDS as readonly string[]).includes(info.id)
    );
    for (const info of extra) {
      assertEquals(info.state, "SEALED", `object ${JSON.stringify(info.id)} was left unsealed`);
    }
    assert(
      extra.length <= mayHaveMade,
      `${extra.length} objects left by a case that could make ${mayHaveMade}: ${
        JSON.stringify(extra.map((info) => info.id))
      }`,
    );
    for (const info of extra) await client.delete(info.id);
    for (const [index, id] of SEED_IDS.entries()) {
      using handle = await client.get(id);
      assertEquals(handle.meta, { "content-type": "text/plain", seed: index });
      assertEquals(
        await digestOf(handle.bytes.slice()),
        digests[index],
        `sealed object ${id} changed`,
      );
    }
  };

  const reset = async () => {
    if (exited) return;
    logged = daemon.stderr().length;
    await eventually(async () => (await client.peer.stats()).leases === 0, "leases end")
      .catch(() => {});
    for (const info of await client.list()) {
      if (!(SEED_IDS as readonly string[]).includes(info.id)) {
        await client.delete(info.id).catch(() => {});
      }
    }
  };

  return {
    socket,
    http,
    authorization: alone ? "" : `Bearer ${token}`,
    client,
    daemon,
    settle,
    reset,
    [Symbol.asyncDispose]: async () => {
      try {
        await client.close();
        const status = await daemon.stop();
        assertEquals(status.code, 0, daemon.stderr());
        assertNoErrors(daemon, logged);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}
