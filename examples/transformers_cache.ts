/**
 * transformers.js loading a model's files through Packice: the first load
 * downloads them from the model host, every later load (in this process or
 * any other sharing the peer) reads them from Packice.
 *
 *   deno run -A --lock=examples/transformers.lock examples/transformers_cache.ts
 *   deno task start --socket /tmp/packice.sock &       # or share a daemon between processes:
 *   deno run -A --lock=examples/transformers.lock examples/transformers_cache.ts \
 *     --socket /tmp/packice.sock --host http://127.0.0.1:8000/
 *
 * Without `--host` it serves a tiny generated tokenizer itself and loads it twice. The lockfile
 * of its own keeps transformers.js's large npm dependency tree (onnxruntime, sharp) out of the
 * project's `deno.lock`, whose type resolution it would otherwise change.
 */
import { parseArgs } from "node:util";
import { AutoConfig, AutoTokenizer, env } from "npm:@huggingface/transformers@4.3.1";
import { connect } from "../mod.ts";
import { PackiceCacheStorage } from "../integrations/mod.ts";
import { tinyTokenizerFiles } from "./tiny_tokenizer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    socket: { type: "string" },
    host: { type: "string" },
    model: { type: "string", default: "tiny/tokenizer" },
  },
});

await using client = await connect(values.socket);
await using host = values.host === undefined ? serveTinyModel() : undefined;

// What a user writes: a Packice-backed Web Cache as transformers.js's cache.
env.useCustomCache = true;
env.customCache = await new PackiceCacheStorage(client).open("transformers");
env.allowLocalModels = false;
env.useFSCache = false;
env.useBrowserCache = false;
env.remoteHost = values.host ?? host!.url;

const loads = values.host === undefined ? 2 : 1;
for (let load = 0; load < loads; load++) {
  const config = await AutoConfig.from_pretrained(values.model);
  const tokenizer = await AutoTokenizer.from_pretrained(values.model);
  const ids = tokenizer.encode("Hello Packice shares models between processes");
  console.log(`model_type: ${config.model_type}; ids: ${ids.join(",")}`);
  if (host !== undefined) console.log(`model host requests so far: ${host.requests}`);
}

/** A model host on a free loopback port serving the tiny tokenizer, counting requests. */
function serveTinyModel() {
  const files = tinyTokenizerFiles();
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    requests++;
    const file = files[new URL(request.url).pathname.split("/").pop()!];
    return file === undefined
      ? new Response("not found", { status: 404 })
      : new Response(file, { headers: { "content-type": "application/json" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    get requests() {
      return requests;
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
