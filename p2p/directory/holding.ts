/**
 * What a holder says of itself, asked directly: whether it holds an
 * object's content whole, some of its pieces (still receiving it), or none.
 * A transfer asks its partial holders so while the directory does not
 * answer (Redis down or hung), so that the pieces they verify meanwhile
 * still reach it: the directory is then off the path of the transfers
 * already running. `GET /v1/cluster/holding/:id?digest=…`, behind the
 * cluster token as every route.
 *
 * @module
 */
import { InvalidArgumentError } from "../../core/errors.ts";
import type { HttpRoute } from "../../transport/http/server.ts";
import { CLUSTER_PREFIX } from "../cluster_transport.ts";
import type { ContentRecord, Holder } from "../directory.ts";
import { decodeBitfield, encodeBitfield } from "../swarm/bitfield.ts";

/** How a daemon holds a content: whole, the announced bitfields of a partial holder, or not. */
export type HeldContent = "whole" | Uint8Array | undefined;

/** A daemon that can say how it holds a content: the cluster peer. */
export interface HoldingSource {
  /** How this daemon holds content `digest` under `id` now. */
  holding(id: string, digest: string): HeldContent;
}

/** The reply of the route: `state`, and a partial holder's bitfields in base64. */
interface HoldingReply {
  readonly state: "whole" | "partial" | "none";
  readonly pieces?: string;
}

/**
 * The route that answers {@link askHolding}.
 *
 * @param source Says how this daemon holds a content.
 */
export function holdingRoute(source: HoldingSource): HttpRoute {
  return {
    method: "GET",
    pattern: `${CLUSTER_PREFIX}/holding/:id`,
    handler: ({ params, url }) => {
      const digest = url.searchParams.get("digest");
      if (digest === null || digest.length === 0) {
        throw new InvalidArgumentError("Cannot say what is held: digest=sha256:<hex> is missing");
      }
      const held = source.holding(params.id!, digest);
      const reply: HoldingReply = held === undefined
        ? { state: "none" }
        : held === "whole"
        ? { state: "whole" }
        : { state: "partial", pieces: encodeBitfield(held) };
      return Response.json(reply);
    },
  };
}

/**
 * Asks `holder` how it holds `record`'s content now.
 *
 * @returns The holder as the directory would list it (without `pieces` when
 *   it holds the whole), null when it holds none of it, or undefined when it
 *   did not answer clearly (unreachable, older, too slow): then what was known
 *   of it stands.
 */
export async function askHolding(
  holder: Holder,
  record: ContentRecord,
  token: string | undefined,
  timeout: number,
  signal: AbortSignal,
): Promise<Holder | null | undefined> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const url = `${holder.address}${CLUSTER_PREFIX}/holding/${encodeURIComponent(record.id)}?digest=${
    encodeURIComponent(record.digest)
  }`;
  try {
    const response = await fetch(url, {
      headers,
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeout)]),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return undefined;
    }
    const reply = await response.json() as Partial<HoldingReply>;
    if (reply.state === "none") return null;
    if (reply.state === "whole") {
      const { node, address, piecePort } = holder;
      return piecePort === undefined ? { node, address } : { node, address, piecePort };
    }
    const pieces = reply.state === "partial" && typeof reply.pieces === "string"
      ? decodeBitfield(reply.pieces)
      : undefined;
    return pieces === undefined ? undefined : { ...holder, pieces };
  } catch {
    return undefined;
  }
}
