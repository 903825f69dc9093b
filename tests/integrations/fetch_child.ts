/** A process that fetches a URL through a cachedFetch on a daemon: `<socket> <url>`. */
import { connect } from "../../mod.ts";
import { createCachedFetch, PackiceCacheStorage } from "../../integrations/mod.ts";

const [socket, url] = Deno.args;
await using client = await connect(socket!);
const cachedFetch = createCachedFetch({ cache: new PackiceCacheStorage(client).open("fetch") });
console.log(await (await cachedFetch(url!)).text());
