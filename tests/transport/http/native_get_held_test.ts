/**
 * The native GET listener closes the sockets of its connections while a
 * child process forked meanwhile may hold another descriptor of each (until
 * its exec), as the test runner and the daemon fork all the time. Their
 * epoll registrations then outlive the close, and an event of such a socket
 * came with the address of a connection already freed: driven after free,
 * a double free (glibc: "double free or corruption") or a heap corrupted
 * quietly, which killed the test runner under load. The child holds those
 * descriptors itself, so the case comes every time.
 */
import { assertEquals } from "../../helpers/assert.ts";
import { loadNative } from "../../../native/load.ts";

const ignore = loadNative() === undefined;

Deno.test({
  name: "native GET listener: an event of a socket it closed while another descriptor held it",
  ignore,
  async fn() {
    const child = new URL("../../helpers/held_socket_child.ts", import.meta.url).pathname;
    // All: /proc/net/tcp and /proc/self/fd, where the listener's sockets are found, need it.
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", child],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assertEquals(code, 0, output);
    assertEquals(/closed (\d+)/.exec(output)?.[1], "8", output);
  },
});
