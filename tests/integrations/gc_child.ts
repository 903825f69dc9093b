/** Drops matched responses unread, collects garbage, and prints the leases held before and after. */
import { connect } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";

const gc = (globalThis as unknown as { gc: () => void }).gc;
await using client = await connect();
const cache = await new PackiceCacheStorage(client).open("gc");
await cache.put("https://example.com/x", new Response("x"));
for (let i = 0; i < 10; i++) {
  if ((await cache.match("https://example.com/x")) === undefined) throw new Error("miss");
}
const before = (await client.peer.stats()).leases;
for (let round = 0; round < 20 && (await client.peer.stats()).leases > 0; round++) {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 20));
}
console.log(`${before} ${(await client.peer.stats()).leases}`);
