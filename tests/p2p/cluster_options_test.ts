/** The cluster flags of `packice serve`: --join, --advertise, --gossip-profile. */
import { InvalidArgumentError } from "../../core/errors.ts";
import { memberUrl } from "../../daemon/cluster_member.ts";
import { parseServeArgs } from "../../daemon/options.ts";
import { assertEquals, assertThrows } from "../helpers/assert.ts";

Deno.test("parseServeArgs() takes --join lists, --advertise and --gossip-profile", () => {
  const options = parseServeArgs([
    "--http",
    "127.0.0.1:0",
    "--join",
    "10.0.0.1:7070, 10.0.0.2:7070",
    "--join",
    "http://10.0.0.3:7070",
    "--advertise",
    "http://10.0.0.9:7070",
    "--gossip-profile",
    "test",
    "--token",
    "shared by the members",
  ]);
  assertEquals(options.join, ["10.0.0.1:7070", "10.0.0.2:7070", "http://10.0.0.3:7070"]);
  assertEquals(options.advertise, "http://10.0.0.9:7070");
  assertEquals(options.gossipProfile, "test");
  const plain = parseServeArgs(["--http", "127.0.0.1:0"]);
  assertEquals(plain.join, []);
  assertEquals(plain.gossipProfile, "lan");
});

Deno.test("parseServeArgs() refuses cluster flags without --http, and unknown profiles", () => {
  assertThrows(() => parseServeArgs(["--join", "10.0.0.1:7070"]), InvalidArgumentError);
  assertThrows(() => parseServeArgs(["--advertise", "http://x:1"]), InvalidArgumentError);
  assertThrows(
    () => parseServeArgs(["--http", "127.0.0.1:0", "--gossip-profile", "wan"]),
    InvalidArgumentError,
  );
});

Deno.test("memberUrl() makes base URLs of host:port and refuses anything else", () => {
  assertEquals(memberUrl("10.0.0.1:7070", "--join"), "http://10.0.0.1:7070");
  assertEquals(memberUrl("[::1]:7070", "--join"), "http://[::1]:7070");
  assertEquals(memberUrl("https://cache.example:443/", "--advertise"), "https://cache.example");
  for (const bad of ["ftp://x:1", "http://u:p@x:1", "http://x:1/path", "x:1?q", ""]) {
    assertThrows(() => memberUrl(bad, "--join"), InvalidArgumentError);
  }
});
