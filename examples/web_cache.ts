/**
 * A Web Cache (the `caches` API of browsers and service workers) that
 * several processes share through a Packice daemon.
 *
 *   deno task start --socket /tmp/packice.sock &
 *   deno run -A examples/web_cache.ts put /tmp/packice.sock https://example.com/hello "hi there"
 *   deno run -A examples/web_cache.ts match /tmp/packice.sock https://example.com/hello   # "hi there"
 */
import { connect } from "../mod.ts";
import { PackiceCacheStorage } from "../integrations/mod.ts";

const [mode, socket, url, text] = Deno.args;
if ((mode !== "put" && mode !== "match") || socket === undefined || url === undefined) {
  console.error("usage: web_cache.ts put SOCKET URL TEXT | match SOCKET URL");
  Deno.exit(2);
}

await using client = await connect(socket);
// Stands in for the global `caches`: same calls, shared by every process on the daemon.
const caches = new PackiceCacheStorage(client);
const cache = await caches.open("example");
if (mode === "put") {
  await cache.put(url, new Response(text ?? "", { headers: { "content-type": "text/plain" } }));
  console.log(`stored ${url}`);
} else {
  const response = await cache.match(url);
  console.log(response === undefined ? "miss" : await response.text());
}
