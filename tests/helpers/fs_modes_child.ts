/**
 * Stores objects with umask 000 in the data directory given (`fs` or
 * `tiered`, in store mode so that every object reaches the disk), keeps one
 * object unsealed, and prints the mode of everything in the directory as
 * JSON `{ "<path>": mode }`.
 */
import { connect, FileSystemPeer, TieredPeer } from "../../mod.ts";

const [impl, dir] = Deno.args;
Deno.umask(0);
await using peer = impl === "tiered"
  ? await TieredPeer.open({
    dir: dir!,
    mode: "store",
    hotCapacity: 8 << 20,
    coldCapacity: 64 << 20,
  })
  : await FileSystemPeer.open({ dir: dir! });
await using client = await connect(peer);
await client.put(new Uint8Array(1 << 20).fill(1), { id: "large" });
await client.put("small", { id: "small", meta: { a: "b" } });
await using unsealed = await client.create(4096, { id: "unsealed" });
await unsealed.write(new Uint8Array(4096));

const modes: Record<string, number> = {};
async function walk(path: string): Promise<void> {
  modes[path] = (await Deno.stat(path)).mode! & 0o7777;
  if (!(await Deno.stat(path)).isDirectory) return;
  for await (const entry of Deno.readDir(path)) await walk(`${path}/${entry.name}`);
}
await walk(dir!);
console.log(JSON.stringify(modes));
