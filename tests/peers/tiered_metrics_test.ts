import { serveHttp } from "../../mod.ts";
import { assert } from "../helpers/assert.ts";
import { openTempTiered, putSettled } from "../helpers/tiered.ts";

Deno.test("/metrics of a tiered peer counts demotions and bytes per tier", async () => {
  await using tiered = await openTempTiered({ hotCapacity: 4 << 20, coldCapacity: 64 << 20 });
  await using server = serveHttp(tiered.peer, { hostname: "127.0.0.1", port: 0 });
  for (let i = 0; i < 6; i++) await putSettled(tiered, `obj-${i}`, 1 << 20);
  const text = await (await fetch(new URL("/metrics", server.url))).text();
  const value = (name: string) =>
    Number(
      /^(\S+) (\S+)$/m.exec(
        text.split("\n").find((line) => line.startsWith(`${name} `)) ?? "",
      )?.[2],
    );
  assert(text.includes("# TYPE packice_tier_demotions_total counter"), text);
  assert(value("packice_tier_demotions_total") >= 1, text);
  assert(value("packice_tier_cold_bytes") >= 1 << 20, text);
  assert(value("packice_tier_hot_bytes") <= 4 << 20, text);
});
