/**
 * The RESP2 codec and the auto-pipelined socket of the standalone Redis
 * client: byte-exact encoding, replies split at every byte, and a real
 * redis-server for batching, errors, login and connection loss.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";
import { redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import {
  CommandBuffer,
  ErrorReply,
  INCOMPLETE,
  ReplyParser,
  type RespValue,
} from "../../../backends/redis/resp.ts";
import { RespSocket } from "../../../backends/redis/resp_socket.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);

Deno.test("CommandBuffer writes commands back to back, UTF-8 lengths in bytes", () => {
  const buffer = new CommandBuffer();
  buffer.push(["SET", "k", ""]);
  buffer.push(["SET", "clé", "ünïcödé ✓"]);
  assertEquals(
    text(buffer.view()),
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n" +
      "*3\r\n$3\r\nSET\r\n$4\r\nclé\r\n$15\r\nünïcödé ✓\r\n",
  );
  buffer.clear();
  assertEquals(buffer.length, 0);
  // A script call encodes as the command of its parts, flattened.
  buffer.pushScript("EVALSHA", "abc", ["k1", "{ns:0}:o:é"], ["1", "", "two"]);
  const flat = new CommandBuffer();
  flat.push(["EVALSHA", "abc", "2", "k1", "{ns:0}:o:é", "1", "", "two"]);
  assertEquals(text(buffer.view()), text(flat.view()));
  buffer.clear();
  // Past its first size, it grows.
  const long = "x".repeat(100_000);
  buffer.push(["ECHO", long, "é".repeat(40_000)]);
  assertEquals(
    text(buffer.view()),
    `*3\r\n$4\r\nECHO\r\n$100000\r\n${long}\r\n$80000\r\n${"é".repeat(40_000)}\r\n`,
  );
});

/** Feeds `wire` to a parser in pieces of `step` bytes; returns every reply. */
function parseInPieces(wire: Uint8Array, step: number): RespValue[] {
  const parser = new ReplyParser();
  const replies: RespValue[] = [];
  for (let at = 0; at < wire.length; at += step) {
    const piece = wire.subarray(at, Math.min(wire.length, at + step));
    parser.space().set(piece);
    parser.feed(piece.length);
    for (let reply = parser.next(); reply !== INCOMPLETE; reply = parser.next()) {
      replies.push(reply);
    }
  }
  return replies;
}

Deno.test("ReplyParser gives the same replies however the bytes are split", () => {
  const wire = bytes(
    "+OK\r\n:-42\r\n$-1\r\n*-1\r\n$0\r\n\r\n$4\r\nhé!\r\n" +
      "*3\r\n*2\r\n+OK\r\n$3\r\nabc\r\n*0\r\n-ERR inside\r\n" +
      "-NOSCRIPT No matching script\r\n",
  );
  for (const step of [1, 2, 3, 7, wire.length]) {
    const replies = parseInPieces(wire, step);
    assertEquals(replies.length, 8, `step ${step}`);
    assertEquals(replies.slice(0, 6), ["OK", -42, null, null, "", "hé!"], `step ${step}`);
    const nested = replies[6] as RespValue[];
    assertEquals(nested.slice(0, 2), [["OK", "abc"], []]);
    assert(nested[2] instanceof ErrorReply && nested[2].message === "ERR inside");
    assert(replies[7] instanceof ErrorReply);
    assertEquals((replies[7] as ErrorReply).message, "NOSCRIPT No matching script");
  }
});

Deno.test("ReplyParser takes a reply larger than its buffer", () => {
  const big = "y".repeat(300_000);
  const wire = bytes(`$${big.length}\r\n${big}\r\n+after\r\n`);
  assertEquals(parseInPieces(wire, 10_000), [big, "after"]);
});

Deno.test(
  "RespSocket sends the commands of one turn in one write, replies in order",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const endpoint = {
      hostname: "127.0.0.1",
      port: redis.port,
      tls: false,
      username: undefined,
      password: undefined,
      database: 3,
    };
    const socket = await RespSocket.open(endpoint, () => {}, () => {});
    try {
      const before = Number(
        /total_net_input_bytes:(\d+)/.exec(
          await socket.send(["INFO", "stats"]) as string,
        )![1],
      );
      const reads = async () =>
        Number(
          /total_reads_processed:(\d+)/.exec(
            await socket.send(["INFO", "stats"]) as string,
          )![1],
        );
      const readsBefore = await reads();
      const replies = await Promise.all(
        Array.from({ length: 200 }, (_, i) => socket.send(["SET", `k${i}`, `vé${i}`])),
      );
      const readsAfter = await reads();
      assert(replies.every((reply) => reply === "OK"));
      // The 200 SETs and the INFO after them: a few reads, not 200.
      assert(readsAfter - readsBefore <= 4, `${readsAfter - readsBefore} reads`);
      assert(before > 0);
      assertEquals(await socket.send(["GET", "k7"]), "vé7");
      // SELECT 3 from the endpoint: database 0 is empty.
      assertEquals(await redis.command("DBSIZE"), 0);
      const error = await assertRejects(() => socket.send(["NOSUCHCOMMAND"]), ErrorReply);
      assert(error.message.startsWith("ERR unknown command"), error.message);
      assertEquals(await socket.send(["GET", "k8"]), "vé8");
    } finally {
      await socket.close();
    }
    assert(!socket.isOpen);
    await assertRejects(() => socket.send(["PING"]), Error, "closed");
  },
);

Deno.test(
  "RespSocket logs in, is refused with a wrong password, and reports a lost connection once",
  redisTestOptions,
  async () => {
    await using redis = await startRedis({ password: "pw" });
    const endpoint = (password: string) => ({
      hostname: "127.0.0.1",
      port: redis.port,
      tls: false,
      username: undefined,
      password,
      database: 0,
    });
    await assertRejects(
      () => RespSocket.open(endpoint("wrong"), () => {}, () => {}),
      ErrorReply,
      "WRONGPASS",
    );
    const lost: unknown[] = [];
    const socket = await RespSocket.open(endpoint("pw"), (cause) => lost.push(cause), () => {});
    assertEquals(await socket.send(["PING"]), "PONG");
    const blocked = assertRejects(() => socket.send(["BLPOP", "nothing", "0"]), Error);
    await redis.stop();
    await blocked;
    assertEquals(lost.length, 1);
    assert(!socket.isOpen);
    await socket.close();
    assertEquals(lost.length, 1);
  },
);

Deno.test(
  "RespSocket: close() waits for the replies of commands sent, destroy() does not",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    const endpoint = {
      hostname: "127.0.0.1",
      port: redis.port,
      tls: false,
      username: undefined,
      password: undefined,
      database: 0,
    };
    const lost: unknown[] = [];
    const a = await RespSocket.open(endpoint, (cause) => lost.push(cause), () => {});
    const slow = a.send(["BLPOP", "nothing", "0.1"]);
    await a.close();
    assertEquals(await slow, null);
    const b = await RespSocket.open(endpoint, (cause) => lost.push(cause), () => {});
    const cut = b.send(["BLPOP", "nothing", "0.1"]);
    b.destroy();
    await assertRejects(() => cut, Error, "closed");
    await b.close();
    assertEquals(lost, []);
  },
);

Deno.test("ReplyParser says a server that answers like HTTP is no Redis server", () => {
  const parser = new ReplyParser();
  const wire = new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n");
  parser.space().set(wire);
  parser.feed(wire.length);
  const error = assertThrows(() => parser.next(), Error);
  assertEquals(
    error.message,
    'its reply starts with "H" (byte 72), not a Redis reply: is a Redis server listening there?',
  );
});
