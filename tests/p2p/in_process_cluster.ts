/** Members of one cluster in this process, over an {@link InProcessNetwork}, on the test profile. */
import { InProcessNetwork } from "../../p2p/cluster_transport.ts";
import { EmbeddedDirectory } from "../../p2p/directory/embedded.ts";
import { Membership } from "../../p2p/membership/membership.ts";
import { type GossipConfig, TEST_PROFILE } from "../../p2p/membership/config.ts";

/** One member: its membership and directory, at `http://<node>`. */
export interface InProcessMember {
  readonly node: string;
  readonly address: string;
  readonly membership: Membership;
  readonly directory: EmbeddedDirectory;
  /** Ids this member was told to drop. */
  readonly dropped: string[];
}

/** A cluster of members in one process; closing it closes every member. */
export interface InProcessCluster extends AsyncDisposable {
  readonly network: InProcessNetwork;
  readonly members: InProcessMember[];
  /** Adds and starts a member that joins through the first one. */
  add(node: string): Promise<InProcessMember>;
  /** Stops a member as SIGKILL would: it answers nothing from now on and its loops stop. */
  kill(member: InProcessMember): Promise<void>;
}

/** Options of {@link inProcessCluster}. */
export interface InProcessClusterOptions {
  /** The gossip profile of a member. Default: the test profile. */
  readonly config?: (node: string) => GossipConfig | undefined;
}

/** Makes `address` answer with `membership`'s routes and `directory`'s (under `directory/`). */
export function serveMember(
  network: InProcessNetwork,
  address: string,
  membership: Membership,
  directory: EmbeddedDirectory,
): void {
  network.register(
    address,
    (path, body) =>
      path.startsWith("directory/")
        ? directory.handle(path.slice("directory/".length), body)
        : membership.handle(path, body),
  );
}

/** Starts `nodes` members, each joining through the first. */
export async function inProcessCluster(
  nodes: readonly string[],
  options: InProcessClusterOptions = {},
): Promise<InProcessCluster> {
  const network = new InProcessNetwork();
  const members: InProcessMember[] = [];
  const killed = new Set<InProcessMember>();
  const add = async (node: string) => {
    const address = `http://${node}`;
    const transport = network.from(address);
    const config = options.config?.(node) ?? TEST_PROFILE;
    const membership = new Membership({ node, transport, config });
    const dropped: string[] = [];
    const directory = new EmbeddedDirectory({
      members: membership,
      transport,
      settle: 20,
      requestTimeout: 500,
    });
    serveMember(network, address, membership, directory);
    directory.onRemove(({ id }) => void dropped.push(id));
    const member = { node, address, membership, directory, dropped };
    members.push(member);
    await membership.start(address, members.length === 1 ? [] : [members[0]!.address]);
    return member;
  };
  for (const node of nodes) await add(node);
  return {
    network,
    members,
    add,
    kill: async (member) => {
      killed.add(member);
      network.unregister(member.address);
      // Its loops end without a leave: close after it can no longer be heard.
      await member.directory.close();
      await member.membership.close();
    },
    [Symbol.asyncDispose]: async () => {
      for (const member of members) {
        if (killed.has(member)) continue;
        await member.directory.close();
        await member.membership.close();
        network.unregister(member.address);
      }
    },
  };
}
