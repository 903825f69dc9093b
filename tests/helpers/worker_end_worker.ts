/**
 * A Worker started by tests/helpers/worker_end_child.ts: connects to the
 * daemon, takes a READ lease on an object and keeps it, says so, and
 * closes itself when asked to, its client left open.
 */
/// <reference lib="deno.worker" />
import { connect } from "../../mod.ts";

const held: unknown[] = [];
self.onmessage = async ({ data }: MessageEvent<{ socket: string; id: string } | "close">) => {
  if (data === "close") return self.close();
  const client = await connect(data.socket);
  held.push(client, await client.get(data.id));
  self.postMessage("holding");
};
