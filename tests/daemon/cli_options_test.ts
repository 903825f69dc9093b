import { InvalidArgumentError } from "../../mod.ts";
import { parseServeArgs } from "../../daemon/options.ts";
import { formatSize, parseSize } from "../../daemon/size.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

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
Deno.test("parseServeArgs() refuses a capacity of 0 or below, saying why", () => {
  const zero = assertThrows(() => parseServeArgs(["--capacity", "0"]), InvalidArgumentError);
  assert(zero.message.includes("--capacity"), zero.message);
  for (const args of [["--capacity", "-1"], ["--capacity=-1"], ["--hot", "-5GiB"]]) {
    const error = assertThrows(() => parseServeArgs(args), InvalidArgumentError);
    assert(error.message.includes("cannot be negative"), error.message);
    assert(!error.message.includes("ambiguous"), error.message);
  }
});

Deno.test("parseServeArgs() refuses --data-dir with --impl mem, which would ignore it", () => {
  const error = assertThrows(
    () => parseServeArgs(["--data-dir", "/tmp/data"]),
    InvalidArgumentError,
  );
  assert(error.message.includes("--data-dir"), error.message);
});

Deno.test("parseServeArgs() reads the token from --token-file, and refuses it with --token", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "from-a-file\n");
    const options = parseServeArgs(["--token-file", file]);
    assertEquals([options.token, options.tokenFrom], ["from-a-file", "--token-file"]);
    assertThrows(
      () => parseServeArgs(["--token-file", file, "--token", "t"]),
      InvalidArgumentError,
    );
    await Deno.writeTextFile(file, "\n");
    assertThrows(() => parseServeArgs(["--token-file", file]), InvalidArgumentError);
    assertThrows(() => parseServeArgs(["--token-file", `${file}.missing`]), InvalidArgumentError);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("parseServeArgs() asks a cluster member (--redis with --http) for a shared token", () => {
  const error = assertThrows(
    () => parseServeArgs(["--redis", "redis://127.0.0.1:1", "--http", "127.0.0.1:0"]),
    InvalidArgumentError,
  );
  assert(error.message.includes("PACKICE_TOKEN"), error.message);
  const options = parseServeArgs(["--redis", "redis://x:1", "--http", ":0", "--token", "t"]);
  assertEquals(options.token, "t");
});

Deno.test("parseServeArgs() refuses a token that cannot go into an Authorization header", () => {
  const made = "21f59e76\nhttp://127.0.0.1:7070"; // a whole token file read as the token
  for (const bad of [made, " padded", "tab\there", "naïve"]) {
    const error = assertThrows(() => parseServeArgs(["--token", bad]), InvalidArgumentError);
    assert(error.message.includes("first line"), error.message);
  }
  for (const good of ["Zm9v.YmFy~_-+/=", "shared by the members", "x"]) {
    assertEquals(parseServeArgs(["--token", good]).token, good);
  }
});

Deno.test("parseServeArgs() reads a socket mode whole and names the flag of a bad rate", () => {
  assertEquals(parseServeArgs(["--socket-mode", "660"]).socketMode, 0o660);
  assertEquals(parseServeArgs(["--socket-mode", "0600"]).socketMode, 0o600);
  for (const bad of ["6x", "60 0", "1000", "-1", ""]) {
    const error = assertThrows(
      () => parseServeArgs([`--socket-mode=${bad}`]),
      InvalidArgumentError,
    );
    assert(error.message.includes("such as 600"), error.message);
  }
  const rate = assertThrows(
    () => parseServeArgs(["--max-upload-rate", "fast"]),
    InvalidArgumentError,
  );
  assert(rate.message.startsWith("Invalid --max-upload-rate: "), rate.message);
});
