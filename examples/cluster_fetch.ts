/**
 * A cluster read-through of a URL: every daemon named fetches it at once,
 * and the origin serves it once. The daemon that claims the URL downloads
 * it; the others pull its pieces from it, and from each other, as they
 * arrive.
 *
 *   packice serve --socket /tmp/a.sock --http 127.0.0.1:7071 --token "$T" --node a &
 *   packice serve --socket /tmp/b.sock --http 127.0.0.1:7072 --token "$T" --node b --join 127.0.0.1:7071 &
 *   deno run -A examples/cluster_fetch.ts https://example.com/model.bin /tmp/a.sock /tmp/b.sock
 *
 * Prints, for each daemon, the status, the size and the SHA-256 of what it
 * answered, and the object that holds it (the same on every daemon).
 */
import { connect } from "../mod.ts";

const [url, ...sockets] = Deno.args;
if (url === undefined || sockets.length === 0) {
  console.error("usage: cluster_fetch.ts URL SOCKET...");
  Deno.exit(2);
}

const lines = await Promise.all(sockets.map(async (socket) => {
  await using client = await connect(socket);
  // As `fetch`: headers such as Authorization go to the origin, and are never stored.
  const response = await client.fetch(url);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${socket}: ${response.status}, ${bytes.length} bytes, sha256 ${hex}, object ${
    response.headers.get("packice-object")
  }`;
}));
for (const line of lines) console.log(line);
