/**
 * For tests/transport/http/native_get_held_test.ts: the native GET listener
 * closes connections while another descriptor of each of their sockets is
 * held, as a child process forked meanwhile holds every descriptor until
 * its exec; then the clients send more. An epoll registration lasts as
 * long as its file, not its descriptor: the listener must take its sockets
 * out of its epoll itself, or their events come with the address of a
 * connection it freed. Prints how many connections it closed under a held
 * descriptor, and exits 0 when it survived.
 */
import { startListener } from "./listener_start.ts";
import { loadNative } from "../../native/load.ts";

const native = loadNative();
if (native === undefined) throw new Error("Cannot load the native library");
const { pk_hg_start, pk_hg_close, pk_dup, pk_close } = native.symbols;

const ROUNDS = 8;
const encoder = new TextEncoder();
// Nothing listens at port 1: each request handed over fails, and the listener closes its connection.
const { port, handle } = startListener(pk_hg_start, 1);

/** The inode of the socket whose local port is `local` and remote port `remote`, from /proc/net/tcp. */
async function socketInode(local: number, remote: number): Promise<string | undefined> {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
  for (const line of (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // Not accepted yet: no inode (0).
    if (
      fields[1]?.endsWith(`:${hex(local)}`) && fields[2]?.endsWith(`:${hex(remote)}`) &&
      fields[9] !== "0"
    ) {
      return fields[9];
    }
  }
  return undefined;
}

/** The descriptor of this process open on the socket of `inode`, if any. */
function descriptorOf(inode: string): number | undefined {
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === `socket:[${inode}]`) {
        return Number(entry.name);
      }
    } catch {
      // Closed meanwhile.
    }
  }
  return undefined;
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = performance.now() + 5000;
  while (!await condition()) {
    if (performance.now() > end) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((go) => setTimeout(go, 5));
  }
}

let closed = 0;
for (let round = 0; round < ROUNDS; round++) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const client = (conn.localAddr as Deno.NetAddr).port;
  let inode: string | undefined;
  let fd: number | undefined;
  await until(async () => {
    inode ??= await socketInode(port, client);
    fd = inode === undefined ? undefined : descriptorOf(inode);
    return fd !== undefined;
  }, "the listener accepted");
  const held = pk_dup(fd!);
  if (held < 0) throw new Error(`Cannot dup: errno ${-held}`);
  try {
    await conn.write(encoder.encode("GET /v1/objects/x HTTP/1.1\r\nhost: a\r\n\r\n"));
    // The listener closed its descriptor (the held one keeps the socket).
    await until(() => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${fd}`) !== `socket:[${inode}]`;
      } catch {
        return true;
      }
    }, "the listener closed the connection");
    closed++;
    // Events of the socket still open: bytes coming, then its end.
    await conn.write(encoder.encode("more"));
    await new Promise((go) => setTimeout(go, 20));
  } finally {
    conn.close();
    await new Promise((go) => setTimeout(go, 20));
    pk_close(held);
  }
}
if (pk_hg_close(handle) !== 0) throw new Error("Cannot close the listener");
console.log(`closed ${closed}`);
