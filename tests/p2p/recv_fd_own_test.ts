// RangeConnection.recvFd writes through a descriptor of its own: the one it
// was given may be closed while the call runs on another thread (a landing
// closed under a transfer), and its number taken by another file, which must
// get no byte.
import { assert, assertEquals } from "../helpers/assert.ts";
import { loadNative } from "../../native/load.ts";
import { RangeConnection } from "../../p2p/swarm/range_connection.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";

const native = loadNative()!;
const lib = native.symbols;
const encoder = new TextEncoder();
const SIZE = 64 << 10;

function memfd(): number {
  const fd = lib.pk_memfd_create(encoder.encode("recv-fd-own\0"), 0);
  assertEquals(lib.pk_ftruncate(fd, BigInt(SIZE)), 0);
  return fd;
}

function contents(fd: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(SIZE));
  assertEquals(Number(lib.pk_pread_all(fd, out, BigInt(SIZE), 0n)), SIZE);
  return out;
}

Deno.test("recvFd lands its bytes in the file it was given, though that descriptor is closed and its number reused meanwhile", async () => {
  const body = new Uint8Array(SIZE).map((_, i) => (i * 7 + 3) & 0xff);
  const go = Promise.withResolvers<void>();
  await using server = scriptedServer(async (_request, conn) => {
    const head = `HTTP/1.1 206 X\r\ncontent-length: ${SIZE}\r\ncontent-range: bytes 0-${
      SIZE - 1
    }/${SIZE}\r\n\r\n`;
    await conn.write(encoder.encode(head));
    await go.promise;
    for (let at = 0; at < SIZE;) at += await conn.write(body.subarray(at));
    return true;
  });
  const connection = RangeConnection.open(lib, "127.0.0.1", server.port);
  const given = memfd();
  // What the test reads the file through once the given descriptor is gone.
  const kept = lib.pk_dup(given);
  let other: number | undefined;
  try {
    await connection.request("GET /x HTTP/1.1\r\nhost: test\r\n\r\n", 5000);
    const receiving = connection.recvFd(given, 0, SIZE, 5000, 3);
    lib.pk_close(given);
    // The lowest free number: most often the one just closed.
    other = memfd();
    go.resolve();
    await receiving;
    // Compared whole, not shown: a diff of 64 KiB arrays takes minutes to print.
    assert(contents(kept).every((byte, i) => byte === body[i]), "the given file has the body");
    assert(contents(other).every((byte) => byte === 0), "the other file took no byte");
  } finally {
    connection.close();
    lib.pk_close(kept);
    if (other !== undefined) lib.pk_close(other);
  }
});
