// A source that stays busy (503: its upload slots taken by other receivers)
// is asked again later each time: 150 ms, then 300, then 600 on average,
// until it answers; at a fixed 150 ms, every receiver of a broadcast asks
// every relay about seven times a second for nothing.
import { assert } from "../helpers/assert.ts";
import { pieceRecord } from "../helpers/piece_record.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";
import { Lanes, sourceOf } from "../../p2p/swarm/source_lanes.ts";
import { PiecePicker } from "../../p2p/swarm/piece_picker.ts";
import { viewLanding } from "../../p2p/swarm/landing.ts";
import { RangeClient } from "../../p2p/swarm/range_client.ts";

const encoder = new TextEncoder();
const SPAN_MS = 3000;

Deno.test("a source that stays busy is asked again later each time, not every 150 ms", async () => {
  const body = new Uint8Array(4 << 16).fill(7);
  const record = pieceRecord("busy", body, 1 << 16);
  const refusal = '{"error":{"code":"STORE_UNAVAILABLE","message":"Busy"}}';
  await using server = scriptedServer(async (_request, conn) => {
    await conn.write(
      encoder.encode(
        `HTTP/1.1 503 X\r\ncontent-type: application/json\r\ncontent-length: ${refusal.length}\r\n\r\n${refusal}`,
      ),
    );
    return true;
  });
  const picker = new PiecePicker(record.pieceDigests.length);
  picker.addSource();
  const client = new RangeClient();
  const lanes = new Lanes({
    record,
    landing: viewLanding(new Uint8Array(body.length)),
    picker,
    client,
    inFlight: 1,
    sources: () => 1,
    verified: () => {},
    broken: (error) => {
      throw error;
    },
  });
  const source = sourceOf({ node: "h", address: `http://127.0.0.1:${server.port}` }, 4);
  try {
    await lanes.run(source, AbortSignal.timeout(SPAN_MS));
  } finally {
    client.close();
  }
  // 3 s at 150 ms: about 20 asks; 150, 300, then 600 ms: about 7.
  const asks = server.requests.length;
  assert(asks >= 3 && asks < 12, `${asks} asks in ${SPAN_MS} ms`);
  assert(source.failure === undefined, "busy is no fault");
});
