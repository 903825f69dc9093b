/**
 * Object ids round-trip code unit for code unit on every transport: a
 * leading U+FEFF is part of the id (not a byte-order mark to drop), and
 * ids that Unicode calls equivalent (NFC and NFD forms, the Angstrom sign)
 * are different ids.
 */
import { assertEquals } from "../helpers/assert.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";
import { type Client, connect, FileSystemPeer } from "../../mod.ts";

const IDS = [
  "a",
  "\uFEFFa",
  "\uFEFF\uFEFFa",
  "a\uFEFF",
  "\uFEFF",
  "\u00e9", // é, NFC
  "e\u0301", // é, NFD
  "\u00c5", // Å
  "A\u030a", // Å, NFD
  "\u212b", // Angstrom sign, NFC Å
  "\u{1F600}",
  "\u{1D518}\u{1D52B}\u{1D526}", // mathematical fraktur, not NFKC-folded
  "a\u200b",
  "\u0915\u094d\u0937", // a Devanagari conjunct
];

/** Different bytes per id: its index, then its UTF-16 code units. */
function bytesOf(index: number): Uint8Array {
  const id = IDS[index]!;
  return Uint8Array.from([index, ...[...id].flatMap((c) => [c.codePointAt(0)! & 0xff])]);
}

async function roundTrip(client: Client): Promise<void> {
  for (const [i, id] of IDS.entries()) {
    assertEquals(await client.put(bytesOf(i), { id }), id);
  }
  for (const [i, id] of IDS.entries()) {
    using handle = await client.get(id);
    assertEquals(handle.bytes, bytesOf(i), `the bytes of ${JSON.stringify(id)}`);
    assertEquals(handle.info.id, id);
    assertEquals((await client.stat(id)).id, id);
  }
  const listed = (await client.list()).map((info) => info.id).sort();
  assertEquals(listed, [...IDS].sort());
  await client.delete("\uFEFFa");
  assertEquals(await client.has("a"), true);
  assertEquals(await client.has("\uFEFFa"), false);
}

Deno.test("ids of awkward Unicode round-trip in process, in memory and on disk", async () => {
  {
    await using client = await connect();
    await roundTrip(client);
  }
  const dir = await Deno.makeTempDir({ prefix: "packice-unicode-" });
  try {
    await using client = await connect(await FileSystemPeer.open({ dir }));
    await roundTrip(client);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ids of awkward Unicode round-trip over the Unix socket and HTTP", async () => {
  const dir = await socketDir();
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--http", `127.0.0.1:${port}`]);
    {
      await using client = await connect(daemon.path);
      await roundTrip(client);
      for (const id of IDS) await client.delete(id).catch(() => {});
    }
    {
      // The token the daemon made, as a client of its user finds it.
      const token = (await Deno.readTextFile(`${daemon.path}.token`)).split("\n")[0]!;
      await using client = await connect(`http://127.0.0.1:${port}`, { token });
      await roundTrip(client);
    }
    assertEquals((await daemon.stop()).code, 0, daemon.stderr());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
