/**
 * A loopback TCP server that answers HTTP requests as a test's script says,
 * byte by byte: for responses no real server sends (cut short, stalled,
 * oversized, garbage).
 *
 * @module
 */

/** A running {@link scriptedServer}. */
export interface ScriptedServer extends AsyncDisposable {
  readonly port: number;
  /** The request heads received, in order. */
  readonly requests: string[];
  /** Connections accepted so far. */
  readonly connections: () => number;
}

/** Answers each request on a connection with `answer`; a false return closes the connection. */
export function scriptedServer(
  answer: (request: string, conn: Deno.Conn) => Promise<boolean>,
): ScriptedServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  let accepted = 0;
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    const handlers: Promise<void>[] = [];
    for await (const conn of listener) {
      conns.add(conn);
      accepted++;
      handlers.push((async () => {
        let text = "";
        const buffer = new Uint8Array(4096);
        try {
          for (;;) {
            const n = await conn.read(buffer);
            if (n === null) break;
            text += new TextDecoder().decode(buffer.subarray(0, n));
            const end = text.indexOf("\r\n\r\n");
            if (end < 0) continue;
            const request = text.slice(0, end + 4);
            text = text.slice(end + 4);
            requests.push(request);
            if (!await answer(request, conn)) break;
          }
        } catch {
          // The client went away.
        } finally {
          if (conns.delete(conn)) conn.close();
        }
      })());
    }
    await Promise.all(handlers);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    connections: () => accepted,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        conns.delete(conn);
        conn.close();
      }
      await serving;
    },
  };
}
