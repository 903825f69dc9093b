/**
 * A client process for the Unix-socket tests. Usage:
 *
 *   uds_child.ts write  SOCKET ID SIZE   create ID, fill it with pattern(ID), seal
 *   uds_child.ts read   SOCKET ID SIZE   get ID, check pattern(ID), report the mapping
 *   uds_child.ts hold   SOCKET ID        hold READ leases on ID and an unsealed object, then wait
 *   uds_child.ts poke   SOCKET ID        get ID and write a byte through the read-only view
 *   uds_child.ts forge  SOCKET ID        take ID's memfd and try to change it by other means
 *   uds_child.ts idle   SOCKET COUNT     open COUNT connections and wait
 *
 * Each prints one JSON line (or "ready" before waiting) on stdout.
 */
import { Access, connect, UdsPeer } from "../../mod.ts";
import { Linux } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import { Flag, Op } from "../../transport/uds/protocol.ts";
import { RawConnection } from "./uds_raw.ts";

/** The byte at `index` of the test pattern of object `id`. */
export function patternByte(id: string, index: number): number {
  let seed = 0;
  for (const char of id) seed = (seed * 31 + char.charCodeAt(0)) & 0xff;
  return (index * 7 + seed + (index >>> 12)) & 0xff;
}

/** The memfd mappings of this process, from /proc/self/maps: permissions and length. */
function memfdMappings(): { perms: string; length: number }[] {
  return Deno.readTextFileSync("/proc/self/maps").split("\n")
    .filter((line) => line.includes("/memfd:"))
    .map((line) => {
      const [range, perms] = line.split(/\s+/);
      const [start, end] = range!.split("-").map((hex) => BigInt(`0x${hex}`));
      return { perms: perms!, length: Number(end! - start!) };
    });
}

const wait = () => new Promise<void>(() => {});

async function main([mode, socket, id, size]: string[]): Promise<void> {
  switch (mode) {
    case "write": {
      // Without memfds prepared ahead, the object's is the one writable mapping.
      await using client = await connect(socket!, { writeAheadBytes: 0 });
      await using writer = await client.create(Number(size), { id: id! });
      const buffer = writer.buffer!;
      for (let i = 0; i < buffer.length; i++) buffer[i] = patternByte(id!, i);
      const mapped = memfdMappings().filter((m) => m.perms === "rw-s");
      await writer.seal();
      console.log(JSON.stringify({ ok: true, writableMappings: mapped.length }));
      return;
    }
    case "read": {
      const client = await connect(socket!);
      const handle = await client.get(id!);
      const bytes = handle.bytes;
      let wrong = -1;
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== patternByte(id!, i)) {
          wrong = i;
          break;
        }
      }
      const checked = bytes.length;
      const mapped = memfdMappings().filter((m) => m.perms === "r--s" && m.length >= checked);
      await handle.close();
      const detached = bytes.length === 0;
      // The connection keeps the read-only mapping a moment for the next read; closing it unmaps.
      await client.close();
      console.log(JSON.stringify({
        ok: wrong < 0 && checked === handle.size,
        detached,
        length: checked,
        firstWrong: wrong,
        readOnlyMappings: mapped.length,
        mappingsAfterClose: memfdMappings().length,
      }));
      return;
    }
    case "hold": {
      const peer = await UdsPeer.connect(socket!);
      await peer.acquire(id!, Access.READ);
      await peer.acquire(id!, Access.READ, { ttl: 60_000 });
      await peer.acquire(`unsealed-${Deno.pid}`, Access.CREATE, { size: 1 << 20 });
      console.log("ready");
      return await wait();
    }
    case "poke": {
      const client = await connect(socket!);
      const handle = await client.get(id!);
      console.log("mapped");
      handle.bytes[0] = handle.bytes[0]! ^ 0xff;
      console.log(JSON.stringify({ survived: true }));
      return;
    }
    case "forge":
      return forge(socket!, id!);
    case "idle": {
      // A thousand sockets may not fit the usual soft limit of 1024 files.
      const limit = Number(loadNative()!.symbols.pk_raise_nofile_limit());
      if (limit < Number(id) + 64) throw new Error(`Open files limit too low: ${limit}`);
      const connections = Array.from({ length: Number(id) }, () => new RawConnection(socket!));
      console.log(JSON.stringify({ ready: connections.length }));
      return await wait();
    }
    default:
      throw new Error(`Unknown mode: ${mode}`);
  }
}

/** Takes the memfd of a sealed object and tries every other way to change it. */
async function forge(socket: string, id: string): Promise<void> {
  using raw = new RawConnection(socket);
  const { symbols } = raw.native;
  raw.send(Op.ACQUIRE, 1, JSON.stringify({ id, access: "READ" }));
  const reply = await raw.receive();
  const frame = reply?.frames[0];
  if (!frame || frame.header.flags & Flag.ERROR || reply.fds.length !== 1) {
    throw new Error(`No fd in the reply: ${JSON.stringify(reply)}`);
  }
  const fd = reply.fds[0]!;
  const size = BigInt(JSON.parse(new TextDecoder().decode(frame.body)).object.size);
  const out = new BigUint64Array(1);
  const one = new Uint8Array([1]);
  const result: Record<string, number> = {};
  result.seals = symbols.pk_get_seals(fd);
  result.mmapWritable = symbols.pk_mmap(fd, size, 0n, 1, 0, out);
  result.write = Number(symbols.pk_pwrite_all(fd, one, 1n, 0n));
  result.truncate = symbols.pk_ftruncate(fd, 0n);
  result.grow = symbols.pk_ftruncate(fd, size * 2n);
  result.unseal = symbols.pk_add_seals(fd, Linux.F_SEAL_FUTURE_WRITE);
  const path = new TextEncoder().encode(`/proc/self/fd/${fd}\0`);
  const reopened = symbols.pk_open(path, Linux.O_RDWR, 0);
  result.reopen = reopened;
  if (reopened >= 0) {
    result.reopenedWrite = Number(symbols.pk_pwrite_all(reopened, one, 1n, 0n));
    result.reopenedMmapWritable = symbols.pk_mmap(reopened, size, 0n, 1, 0, out);
    result.reopenedTruncate = symbols.pk_ftruncate(reopened, 0n);
    symbols.pk_close(reopened);
  }
  symbols.pk_close(fd);
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main(Deno.args);
