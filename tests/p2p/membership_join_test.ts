/**
 * A member whose seeds are not up yet: it tries again soon, and its directory
 * does not answer from a view of itself alone meanwhile.
 */
import { InProcessNetwork } from "../../p2p/cluster_transport.ts";
import { EmbeddedDirectory } from "../../p2p/directory/embedded.ts";
import { type GossipConfig, TEST_PROFILE } from "../../p2p/membership/config.ts";
import { JOIN_GRACE_PROBES, Membership } from "../../p2p/membership/membership.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { serveMember } from "./in_process_cluster.ts";

/** Full syncs far apart, so that only the join's own retries can make it join in time. */
const PROFILE: GossipConfig = { ...TEST_PROFILE, pushPullInterval: 20_000 };

function member(network: InProcessNetwork, node: string) {
  const address = `http://${node}`;
  const transport = network.from(address);
  const membership = new Membership({ node, transport, config: PROFILE });
  const directory = new EmbeddedDirectory({ members: membership, transport, requestTimeout: 500 });
  serveMember(network, address, membership, directory);
  return {
    address,
    membership,
    directory,
    async [Symbol.asyncDispose]() {
      await directory.close();
      await membership.close();
    },
  };
}

Deno.test("a member started before its seed joins it soon, and claims only once joined", async () => {
  const network = new InProcessNetwork();
  await using b = member(network, "b");
  network.unregister("http://a");
  const started = Date.now();
  await b.membership.start(b.address, ["http://a"]);
  let joined = false;
  const joining = b.membership.joined().then(() => joined = true);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert(!joined, "joined before any seed answered");

  await using a = member(network, "a");
  await a.membership.start(a.address);
  const key = "origin-k";
  assertEquals((await a.directory.claim(key, { node: "a", address: a.address }, 10_000)).node, "a");
  // b asks while its view still holds itself alone: it waits for the join, then defers to a.
  const winner = await b.directory.claim(key, { node: "b", address: b.address }, 10_000);
  await joining;
  assertEquals(winner.node, "a");
  assertEquals(b.membership.live().length, 2);
  const took = Date.now() - started;
  assert(
    took < 2000,
    `joined after ${took} ms; full syncs are ${PROFILE.pushPullInterval} ms apart`,
  );
});

Deno.test("a member whose seeds never answer goes on alone after the join grace", async () => {
  const network = new InProcessNetwork();
  await using b = member(network, "b");
  const started = Date.now();
  await b.membership.start(b.address, ["http://nobody"]);
  await b.directory.claim("origin-k", { node: "b", address: b.address }, 10_000);
  const took = Date.now() - started;
  const grace = JOIN_GRACE_PROBES * PROFILE.probeInterval;
  assert(took >= grace - 50, `claimed after ${took} ms, before the ${grace} ms grace`);
  assert(took < grace + 1000, `claimed after ${took} ms, grace ${grace} ms`);
});
