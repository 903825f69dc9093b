/**
 * A Worker started by tests/helpers/worker_end_child.ts: connects to the
 * daemon, takes a READ lease on an object and keeps it, and says so; then,
 * when asked to be busy, gets the object again and again until it ends. It
 * closes itself when asked to, its client left open.
 */
/// <reference lib="deno.worker" />
import { connect } from "../../mod.ts";

interface Start {
  readonly socket: string;
  readonly id: string;
  readonly busy: boolean;
}

const held: unknown[] = [];
self.onmessage = async ({ data }: MessageEvent<Start | "close">) => {
  if (data === "close") return self.close();
  const client = await connect(data.socket);
  held.push(client, await client.get(data.id));
  self.postMessage("holding");
  // Requests in flight, and waits of every kind under way, when it ends.
  while (data.busy) {
    using _again = await client.get(data.id);
  }
};
