// BLAKE3 (native/packice.c section 8, p2p/blake3.ts) against the official
// test vectors, in every kernel this CPU has (plain C, AVX2's 8 lanes,
// AVX-512's 16) and in TypeScript; the kernels against each other on random
// lengths; and the Range receiver (section 10) hashing a piece with BLAKE3 as
// it lands, in memory and into a memfd, SHA-256 between, from uneven writes.
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../helpers/assert.ts";
import { loadNative } from "../../native/load.ts";
import { blake3, blake3Portable } from "../../p2p/blake3.ts";
import { sha256 } from "../../p2p/sha256.ts";
import { HASH_END, hashStart, RangeConnection } from "../../p2p/swarm/range_connection.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";
import { runDenoScript } from "../helpers/deno_script.ts";

const lib = loadNative()!.symbols;

// From BLAKE3's test_vectors/test_vectors.json: input length and the first 32
// bytes of the hash of bytes i % 251.
const VECTORS: ReadonlyArray<readonly [number, string]> = [
  [0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"],
  [1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"],
  [2, "7b7015bb92cf0b318037702a6cdd81dee41224f734684c2c122cd6359cb1ee63"],
  [3, "e1be4d7a8ab5560aa4199eea339849ba8e293d55ca0a81006726d184519e647f"],
  [4, "f30f5ab28fe047904037f77b6da4fea1e27241c5d132638d8bedce9d40494f32"],
  [5, "b40b44dfd97e7a84a996a91af8b85188c66c126940ba7aad2e7ae6b385402aa2"],
  [6, "06c4e8ffb6872fad96f9aaca5eee1553eb62aed0ad7198cef42e87f6a616c844"],
  [7, "3f8770f387faad08faa9d8414e9f449ac68e6ff0417f673f602a646a891419fe"],
  [8, "2351207d04fc16ade43ccab08600939c7c1fa70a5c0aaca76063d04c3228eaeb"],
  [63, "e9bc37a594daad83be9470df7f7b3798297c3d834ce80ba85d6e207627b7db7b"],
  [64, "4eed7141ea4a5cd4b788606bd23f46e212af9cacebacdc7d1f4c6dc7f2511b98"],
  [65, "de1e5fa0be70df6d2be8fffd0e99ceaa8eb6e8c93a63f2d8d1c30ecb6b263dee"],
  [127, "d81293fda863f008c09e92fc382a81f5a0b4a1251cba1634016a0f86a6bd640d"],
  [128, "f17e570564b26578c33bb7f44643f539624b05df1a76c81f30acd548c44b45ef"],
  [129, "683aaae9f3c5ba37eaaf072aed0f9e30bac0865137bae68b1fde4ca2aebdcb12"],
  [1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"],
  [1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"],
  [1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"],
  [2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"],
  [2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"],
  [3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"],
  [3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"],
  [4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"],
  [4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"],
  [5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"],
  [5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"],
  [6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"],
  [6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"],
  [7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"],
  [7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"],
  [8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63"],
  [8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"],
  [16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"],
  [31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"],
  [102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"],
];

function input(length: number, from = 0): Uint8Array<ArrayBuffer> {
  // A buffer of its own (off V8's heap when large), as the native calls want.
  const out = new Uint8Array(new ArrayBuffer(length));
  for (let i = 0; i < length; i++) out[i] = (i + from) % 251;
  return out;
}

const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** The kernels this CPU runs, as lane counts: 1, and 8 and 16 where it has them. */
function kernels(): number[] {
  const most = lib.pk_blake3_lanes(0);
  return [1, 8, 16].filter((lanes) => lanes <= most);
}

/** Runs `body` with the kernel capped at `lanes`, then gives the CPU's back. */
async function withLanes(lanes: number, body: () => Promise<void>): Promise<void> {
  assertEquals(lib.pk_blake3_lanes(lanes), lanes);
  try {
    await body();
  } finally {
    lib.pk_blake3_lanes(0);
  }
}

Deno.test("blake3() matches the official vectors in each kernel, on and off the JS thread", async () => {
  const all = input(VECTORS.at(-1)![0]);
  for (const lanes of kernels()) {
    await withLanes(lanes, async () => {
      for (const [length, hash] of VECTORS) {
        assertEquals(
          await blake3(all.subarray(0, length)),
          `blake3:${hash}`,
          `${length} bytes, ${lanes} lanes`,
        );
        // At least 64 KiB: the call runs on the thread pool.
        const large = input(length + (64 << 10));
        assertEquals(await blake3(large.subarray(0, length)), `blake3:${hash}`);
      }
    });
  }
});

Deno.test("the TypeScript BLAKE3 matches the official vectors", () => {
  const all = input(VECTORS.at(-1)![0]);
  for (const [length, hash] of VECTORS) {
    assertEquals(hexOf(blake3Portable(all.subarray(0, length))), hash);
  }
});

Deno.test("the SIMD kernels agree with plain C on random lengths and offsets", async () => {
  const all = input(4 << 20);
  for (let round = 0; round < 40; round++) {
    const at = Math.floor(Math.random() * 64);
    const length = Math.floor(Math.random() ** 2 * (all.length - at));
    const bytes = all.subarray(at, at + length);
    let plain = "";
    await withLanes(1, async () => {
      plain = await blake3(bytes);
    });
    for (const lanes of kernels()) {
      await withLanes(lanes, async () => {
        assertEquals(await blake3(bytes), plain, `${length} bytes at ${at}, ${lanes} lanes`);
      });
    }
    if (length < (256 << 10)) assertEquals(`blake3:${hexOf(blake3Portable(bytes))}`, plain);
  }
});

Deno.test("the Range receiver hashes pieces with BLAKE3 as they land, in memory and into a memfd, SHA-256 between", async () => {
  const encoder = new TextEncoder();
  const body = input((3 << 20) + 777, 5);
  await using server = scriptedServer(async (_request, conn) => {
    const head = `HTTP/1.1 206 X\r\ncontent-length: ${body.length}\r\n\r\n`;
    const first = new Uint8Array([...encoder.encode(head), ...body.subarray(0, 1000)]);
    for (let at = 0; at < first.length;) at += await conn.write(first.subarray(at));
    // Uneven writes: recvs of odd sizes, across chunk borders.
    for (let at = 1000; at < body.length; at += 77_777) {
      const end = Math.min(body.length, at + 77_777);
      for (let sent = at; sent < end;) sent += await conn.write(body.subarray(sent, end));
    }
    return true;
  });
  const fd = lib.pk_memfd_create(encoder.encode("blake3-test\0"), 0);
  const connection = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    for (const lanes of kernels()) {
      await withLanes(lanes, async () => {
        await connection.request("GET /x HTTP/1.1\r\nhost: test\r\n\r\n", 5000);
        // Piece one into memory in two calls; two into the memfd under
        // SHA-256 (a record from an older daemon); three into it under BLAKE3.
        const mib = 1 << 20;
        const dest = new Uint8Array(new ArrayBuffer(mib));
        await connection.recv(dest.subarray(0, 300_000), 5000, hashStart("blake3"));
        await connection.recv(dest.subarray(300_000), 5000, HASH_END);
        assertEquals(connection.digest(), await blake3(body.subarray(0, mib)));
        await connection.recvFd(fd, mib, mib, 5000, hashStart("sha256") | HASH_END);
        assertEquals(connection.digest(), await sha256(body.subarray(mib, 2 * mib)));
        const rest = body.length - 2 * mib;
        await connection.recvFd(fd, 2 * mib, rest, 5000, hashStart("blake3") | HASH_END);
        assertEquals(connection.digest(), await blake3(body.subarray(2 * mib)));
        const landed = new Uint8Array(new ArrayBuffer(2 * mib + rest));
        assertEquals(
          Number(lib.pk_pread_all(fd, landed, BigInt(landed.length), 0n)),
          landed.length,
        );
        assert(landed.every((byte, i) => i < mib || byte === body[i]), "the memfd has the pieces");
        assertEquals(connection.pending, 0);
      });
    }
  } finally {
    connection.close();
    lib.pk_close(fd);
  }
});

Deno.test("without the native library, new records' pieces are SHA-256 and BLAKE3 still checks in TypeScript", async () => {
  // A child without permissions: the library cannot load there.
  const script = `
    import { digestLike, newPieceAlgorithm } from "${new URL(
    "../../p2p/piece_digest.ts",
    import.meta.url,
  )}";
    const bytes = new Uint8Array(102400).map((_, i) => i % 251);
    console.log(newPieceAlgorithm(), await digestLike(bytes, "blake3:" + "0".repeat(64)));
  `;
  const [algorithm, digest] = (await runDenoScript(script)).split(" ");
  assertEquals(algorithm, "sha256");
  assertEquals(digest, `blake3:${VECTORS.at(-1)![1]}`);
});
