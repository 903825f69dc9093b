/**
 * A process that shares a Web Cache through a daemon: `put <socket> <tag> <count>` stores
 * `count` entries and one shared URL, `read <socket> <url>` prints what it matches.
 */
import { connect } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";

const [mode, socket, ...rest] = Deno.args;
await using client = await connect(socket!);
const cache = await new PackiceCacheStorage(client).open("shared");
if (mode === "put") {
  const [tag, count] = rest;
  for (let i = 0; i < Number(count); i++) {
    await cache.put(`https://example.com/${tag}/${i}`, new Response(`${tag}:${i}`));
    // Everyone also replaces one shared entry: a reader must see one whole version of it.
    const body = `${tag}:${i}:`.padEnd(4096, tag!);
    await cache.put(
      "https://example.com/shared",
      new Response(body, { headers: { "x-tag": tag! } }),
    );
  }
  console.log("done");
} else {
  const response = await cache.match(rest[0]!);
  console.log(response === undefined ? "miss" : await response.text());
}
