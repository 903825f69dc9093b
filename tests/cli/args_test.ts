import { UsageError } from "../../cli/command.ts";
import { EXIT_CODES, EXIT_FILE, EXIT_USAGE } from "../../cli/exit_codes.ts";
import { formatDuration } from "../../cli/format.ts";
import { parseDuration, parseMeta } from "../../cli/put.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

Deno.test("parseDuration() reads 500ms, 30s, 10m, 2h, 1d and plain milliseconds", () => {
  assertEquals(
    ["500ms", "30s", "10m", "2h", "1d", "1500", "1.5s"].map((text) => parseDuration(text, "--ttl")),
    [500, 30_000, 600_000, 7_200_000, 86_400_000, 1500, 1500],
  );
  for (const bad of ["", "0", "-1s", "ten", "5y", "1e3"]) {
    assertThrows(() => parseDuration(bad, "--ttl"), UsageError);
  }
});

Deno.test("parseMeta() reads KEY=VALUE pairs, the value free to hold =", () => {
  assertEquals(parseMeta(["a=b", "url=x?y=z", "empty="]), { a: "b", url: "x?y=z", empty: "" });
  assertThrows(() => parseMeta(["novalue"]), UsageError);
  assertThrows(() => parseMeta(["=v"]), UsageError);
});

Deno.test("formatDuration() is short and exact enough for an ETA", () => {
  assertEquals([0, 42, 185, 7800, 3 * 86400 + 4 * 3600].map(formatDuration), [
    "0s",
    "42s",
    "3m 05s",
    "2h 10m",
    "3d 4h",
  ]);
});

Deno.test("every error code has an exit code of its own, apart from usage and file errors", () => {
  const codes = [...Object.values(EXIT_CODES), EXIT_USAGE, EXIT_FILE, 0];
  assertEquals(new Set(codes).size, codes.length);
});
