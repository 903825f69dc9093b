/**
 * Two processes share a large file through a Packice daemon: one stores it,
 * the other writes it out again, the bytes going from the file into shared
 * memory and from shared memory into the new file with no copy in JavaScript.
 *
 *   deno task start --socket /tmp/packice.sock &
 *   head -c 1G /dev/urandom > big.bin
 *   deno run -A examples/share_file.ts put /tmp/packice.sock big.bin          # prints the id
 *   deno run -A examples/share_file.ts get /tmp/packice.sock big.bin copy.bin # another process
 */
import { connect } from "../mod.ts";
import { getFile, putFile } from "../integrations/mod.ts";

const [mode, socket, id, path] = Deno.args;
if ((mode !== "put" && mode !== "get") || socket === undefined || id === undefined) {
  console.error("usage: share_file.ts put SOCKET FILE | get SOCKET ID OUT");
  Deno.exit(2);
}

await using client = await connect(socket);
const start = performance.now();
if (mode === "put") {
  const name = id.split("/").pop()!;
  if (await client.has(name)) {
    console.log(`${name} is already stored; delete it first to store it again`);
    Deno.exit(0);
  }
  const stored = await putFile(client, id, { id: name });
  const { size } = await client.stat(stored);
  console.log(`stored ${stored}: ${size} bytes in ${(performance.now() - start).toFixed(1)} ms`);
} else {
  const bytes = await getFile(client, id, path ?? id);
  console.log(
    `wrote ${path ?? id}: ${bytes} bytes in ${(performance.now() - start).toFixed(1)} ms`,
  );
}
