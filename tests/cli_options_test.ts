import { InvalidArgumentError } from "../mod.ts";
import { parseServeArgs } from "../daemon/options.ts";
import { formatSize, parseSize } from "../daemon/size.ts";
import { assertEquals, assertThrows } from "./helpers/assert.ts";

Deno.test("parseSize() reads plain bytes and binary and decimal units", () => {
  assertEquals(parseSize("1048576"), 1048576);
  assertEquals(parseSize("8GiB"), 8 * 1024 ** 3);
  assertEquals(parseSize("512 MiB"), 512 * 1024 ** 2);
  assertEquals(parseSize("1.5GB"), 1.5e9);
  assertEquals(parseSize("4k"), 4000);
  for (const bad of ["", "-1", "8XB", "GiB", "1e99TiB"]) {
    assertThrows(() => parseSize(bad), InvalidArgumentError);
  }
  assertEquals(formatSize(8 * 1024 ** 3), "8.0 GiB");
});

Deno.test("parseServeArgs() applies defaults and refuses bad flags", () => {
  const options = parseServeArgs(["--socket", "/tmp/x.sock", "--capacity", "1GiB"]);
  assertEquals([options.socket, options.capacity, options.impl, options.socketMode], [
    "/tmp/x.sock",
    1024 ** 3,
    "mem",
    0o600,
  ]);
  assertThrows(() => parseServeArgs(["--impl", "fs"]), InvalidArgumentError);
  assertThrows(() => parseServeArgs(["--impl", "disk"]), InvalidArgumentError);
  assertThrows(() => parseServeArgs(["--bogus"]), InvalidArgumentError);
  assertThrows(() => parseServeArgs(["--capacity", "lots"]), InvalidArgumentError);
  assertThrows(() => parseServeArgs(["--socket-mode", "999"]), InvalidArgumentError);
});

Deno.test("parseServeArgs() reads rate limits and upload slots, and refuses zero", () => {
  const options = parseServeArgs([
    "--max-upload-rate",
    "200MB",
    "--max-download-rate",
    "1GiB",
    "--max-uploads",
    "8",
  ]);
  assertEquals([options.maxUploadRate, options.maxDownloadRate, options.maxUploads], [
    200e6,
    1024 ** 3,
    8,
  ]);
  assertEquals(parseServeArgs([]).maxUploadRate, undefined);
  for (const bad of [["--max-upload-rate", "0"], ["--max-uploads", "0"], ["--max-uploads", "x"]]) {
    assertThrows(() => parseServeArgs(bad), InvalidArgumentError);
  }
});
