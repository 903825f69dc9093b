/**
 * LIST in pages over the Unix socket (core/list_page.ts): a list of any size
 * reaches the client without the daemon queueing it whole (its send queue
 * would pass its cap and it would take the client for one that does not
 * read), in put order, with deletes and puts between pages neither skipping
 * nor repeating a live object; an old client's bare LIST gets the old form
 * up to a bound and a typed error beyond; bad cursors and limits get typed
 * errors and the connection serves on.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import {
  type Client,
  connect,
  InvalidArgumentError,
  MemoryPeer,
  type ObjectInfo,
} from "../../../mod.ts";
import { ErrorCode } from "../../../core/errors.ts";
import { Flag, Op } from "../../../transport/uds/protocol.ts";
import { openNative } from "../../helpers/native.ts";
import { pattern } from "../../helpers/pattern.ts";
import { servePeer } from "../../helpers/served_peer.ts";
import { spawnDaemon, testInSocketDir } from "../../helpers/uds_daemon.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { runCli } from "../../helpers/cli.ts";

const native = openNative();

/** Puts `count` objects of 100 bytes, 64 at a time; their ids in put order. */
async function putMany(client: Client, count: number): Promise<string[]> {
  const bytes = new Uint8Array(100);
  const ids: string[] = [];
  for (let i = 0; i < count; i += 64) {
    const batch = Math.min(64, count - i);
    ids.push(...await Promise.all(Array.from({ length: batch }, () => client.put(bytes))));
  }
  return ids;
}

/** One raw request and its reply's frames joined: error code or JSON. */
async function raw(connection: RawConnection, op: number, body: string): Promise<unknown> {
  assert(connection.send(op, 7, body) > 0);
  let text = "";
  for (;;) {
    const reply = await connection.receive();
    assert(reply !== undefined, "a reply");
    for (const { header, body } of reply.frames) {
      text += new TextDecoder().decode(body);
      if ((header.flags & Flag.MORE) !== 0) continue;
      const value = header.length === 0 && text === "" ? null : JSON.parse(text);
      return (header.flags & Flag.ERROR) !== 0
        ? { error: (value as { code: string }).code }
        : value;
    }
  }
}

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

testInSocketDir(
  "100k objects are listed through the socket, each once in put order",
  async (dir) => {
    await using daemon = await spawnDaemon(`${dir}/d.sock`, ["--capacity", "1GiB"]);
    await using client = await connect(daemon.path);
    const put = await putMany(client, 100_000);
    const listed = await client.list();
    assertEquals(listed.length, put.length);
    assertEquals(ids(listed), put);
    // The connection serves on, and the daemon disconnected nobody.
    assertEquals(await client.has("nope"), false);
    const metrics = await client.metrics();
    assertEquals(metrics.uds_clients, 1);
    assertEquals(daemon.stderr(), "");

    // Walked a page at a time.
    let walked = 0;
    for await (const info of client.objects({ pageSize: 10_000 })) {
      assertEquals(info.id, put[walked++]);
    }
    assertEquals(walked, put.length);

    // A client from before pages: a bare LIST this long gets a typed error, and its connection serves on.
    {
      using old = new RawConnection(daemon.path);
      assertEquals(await raw(old, Op.LIST, ""), { error: ErrorCode.UNSUPPORTED });
      assertEquals(
        await raw(old, Op.STAT, put[0]!).then((info) => (info as ObjectInfo).id),
        put[0],
      );
    }

    // The CLI prints them all, in put order, as pages come.
    const ls = await runCli(["ls"], { env: { PACKICE_TARGET: daemon.path } });
    assertEquals(ls.code, 0, ls.stderr);
    const lines = ls.stdout.split("\n");
    assertEquals(lines.pop(), "");
    assertEquals(lines.length, put.length);
    assert(lines.every((id, i) => id === put[i]), "ls lists in put order");
    const json = await runCli(["ls", "--json"], { env: { PACKICE_TARGET: daemon.path } });
    assertEquals(ids(JSON.parse(json.stdout)), put);
    assertEquals(daemon.stderr(), "");
  },
);

Deno.test({
  name: "deletes and puts between pages neither skip nor repeat a live object",
  ignore: native === undefined,
  async fn() {
    await using served = await servePeer(new MemoryPeer({ capacity: 64 * 1024 * 1024 }));
    await using client = await udsClient(served.path);
    const put: string[] = [];
    for (let i = 0; i < 40; i++) put.push(await client.put(pattern(100, i)));
    // Some taken in by the peer (a read needs them), the rest still records stored in C.
    for (const at of [3, 9, 10, 25]) (await client.get(put[at]!)).close();
    const seen: string[] = [];
    const live = new Set(put);
    const added: string[] = [];
    for await (const info of client.objects({ pageSize: 10 })) {
      seen.push(info.id);
      if (seen.length === 10) {
        // The cursor's own object (the last of the page), one just before and ones ahead.
        for (const at of [9, 8, 10, 11, 30]) {
          await client.delete(put[at]!);
          live.delete(put[at]!);
        }
        for (let i = 0; i < 3; i++) added.push(await client.put(pattern(100, 100 + i)));
      }
      if (seen.length === 20) {
        // One of the next page, and one put meanwhile.
        await client.delete(put[24]!);
        live.delete(put[24]!);
        await client.delete(added.shift()!);
      }
    }
    // The first page as it was; after it, each object live at its page's fetch once, in put order.
    assertEquals(seen, [
      ...put.slice(0, 10),
      ...put.slice(10).filter((id) => live.has(id)),
      ...added,
    ]);
    assertEquals(ids(await client.list()), [...put.filter((id) => live.has(id)), ...added]);
  },
});

Deno.test({
  name: "a bare LIST, from a client from before pages, gets the whole list as an array",
  ignore: native === undefined,
  async fn() {
    await using served = await servePeer(new MemoryPeer());
    await using client = await udsClient(served.path);
    const put: string[] = [];
    for (let i = 0; i < 50; i++) put.push(await client.put(pattern(64, i)));
    using old = new RawConnection(served.path);
    assertEquals(ids(await raw(old, Op.LIST, "") as ObjectInfo[]), put);
  },
});

Deno.test({
  name: "a bad cursor or limit gets a typed error, and the connection serves on",
  ignore: native === undefined,
  async fn() {
    await using served = await servePeer(new MemoryPeer());
    await using client = await udsClient(served.path);
    const id = await client.put("x");
    using connection = new RawConnection(served.path);
    const bad = [
      { limit: 0 },
      { limit: 1e9 },
      { limit: 1.5 },
      { limit: "10" },
      { after: "nope" },
      { after: 12 },
      { after: "-1:x" },
      ["after"],
    ];
    for (const body of bad) {
      assertEquals(
        await raw(connection, Op.LIST, JSON.stringify(body)),
        { error: ErrorCode.INVALID_ARGUMENT },
        JSON.stringify(body),
      );
    }
    assertEquals(await raw(connection, Op.LIST, "{"), { error: ErrorCode.PROTOCOL });
    assertEquals(ids((await raw(connection, Op.LIST, "{}") as { objects: ObjectInfo[] }).objects), [
      id,
    ]);
    // Checked before it leaves, too.
    await assertRejects(() => client.objects({ pageSize: 0 }).next(), InvalidArgumentError);
    await assertRejects(
      () => (served.peer as MemoryPeer).listPage({ after: "x" }),
      InvalidArgumentError,
    );
    assertEquals(await client.has(id), true);
  },
});
