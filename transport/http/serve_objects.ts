/**
 * The object routes of the HTTP server: an object put in one request, its
 * bytes read with entity tags and ranges, its info, and its deletion.
 *
 * @module
 */
import {
  NotFoundError,
  NotSealedError,
  ProtocolError,
  StoreUnavailableError,
} from "../../core/errors.ts";
import { deleteObject as removeObject } from "../../core/delete_in_steps.ts";
import { Access } from "../../core/lease.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { type Acquired, offersArrivingRead, offersLocalStat, type Peer } from "../../core/peer.ts";
import { deleteRequest, getRequest, putRequest, statRequest } from "../../core/requests.ts";
import { computeDigest } from "../../backends/digest.ts";
import { loadNative } from "../../native/load.ts";
import { MemfdSpool, storeSpool } from "../../native/spool.ts";
import { blobStream, receive, spoolBody, uploadLength } from "./body.ts";
import { noneMatch, parseRange } from "./conditional.ts";
import { etagOf, notModified, objectHeaders, sentRange } from "./object_headers.ts";
import { Header, objectPath } from "./protocol.ts";
import type { RouteContext } from "./router.ts";
import { checkMetaSize, type ServerContext } from "./server_context.ts";
import type { NativeGetWatch, NativeTicket } from "./native_get.ts";
import type { PartialHolder, PartialObject } from "./upload_gate.ts";
import type { ByteRange } from "./conditional.ts";

/**
 * PUT /v1/objects/:id and POST /v1/objects: creates, fills and seals an
 * object in one request. A body cut off or of the wrong length discards it.
 * A body of no declared length (chunked) is gathered in a memfd first,
 * where the native library loads; else it is refused with 411.
 */
export async function upload(
  server: ServerContext,
  { request, url }: RouteContext,
  id: string | undefined,
): Promise<Response> {
  const native = loadNative();
  const size = uploadLength(request, server.maxBodySize, native !== undefined);
  // The object's TTL, from `?ttl=` or the header; the lease's is the server's own.
  const ttlText = url.searchParams.get("ttl") ?? request.headers.get(Header.TTL);
  const put = putRequest({
    id,
    meta: metaOf(server, request),
    ttl: ttlText === null ? undefined : ttlNumber(ttlText),
  });
  const { meta } = put;
  const ttl = server.leaseTtl;
  const fields = {
    ttl,
    ...(put.ttl === undefined ? {} : { objectTtl: put.ttl }),
    ...(meta === undefined ? {} : { meta }),
  };
  const peer = server.peer;
  if (size === undefined) {
    // A body of unknown length goes into a memfd first, then becomes the object.
    using spool = new MemfdSpool(native!);
    await spoolBody(request.body, spool, server.maxBodySize);
    const info = await storeSpool(peer, spool, put.id, fields);
    return Response.json(info, { status: 201, headers: { location: objectPath(info.id) } });
  }
  const { lease, blobs } = await peer.acquire(put.id, Access.CREATE, { size, ...fields });
  let info: ObjectInfo;
  try {
    const blob = blobs[0]!;
    let renewed = performance.now();
    await receive(request.body, size, (chunk, at) => blob.write(at, chunk), async () => {
      if (performance.now() - renewed < ttl / 3) return;
      renewed = performance.now();
      await peer.renew(lease.id);
    });
    info = await peer.seal(lease.id);
  } catch (error) {
    await peer.discard(lease.id).catch(() => {});
    throw error;
  }
  await peer.release(lease.id);
  return Response.json(info, { status: 201, headers: { location: objectPath(info.id) } });
}

/** The header of a response about an object still on its way. */
const CREATING = { [Header.STATE]: "CREATING" } as const;

/** GET and HEAD /v1/objects/:id: the bytes, with entity tag, range and type. */
export async function download(
  server: ServerContext,
  route: RouteContext,
  head: boolean,
): Promise<Response> {
  const { request, params, info, url } = route;
  const peer = server.peer;
  const id = getRequest(params.id);
  const ifNoneMatch = request.headers.get("if-none-match");
  // `?local=1`: this host's copy only, as daemons ask each other.
  const local = url.searchParams.get("local") === "1";
  if (head || ifNoneMatch !== null) {
    // Answered from the directory when the digest is known: no lease needed.
    const known = await statOf(peer, id, local);
    if (known.state !== "SEALED") {
      // On its way here, a GET streams it: its state, and its size once known
      // (with no body at all the server would say `Content-Length: 0`). Written
      // under a CREATE lease (held, unsealed), a GET refuses it, and so does HEAD.
      if (head && offersArrivingRead(peer) && !await peer.has(id)) {
        const body = known.blobSizes.length > 0 ? null : ReadableStream.from([]);
        return new Response(body, { headers: { ...objectHeaders(known), ...CREATING } });
      }
      throw new NotSealedError(`Cannot read object ${id}: not sealed`);
    }
    if (known.digest !== undefined) {
      if (noneMatch(ifNoneMatch, etagOf(known.digest))) return notModified(known.digest);
      if (head) return new Response(null, { headers: objectHeaders(known, known.digest) });
    }
  }
  // Another daemon asking for an object on its way here: a relay.
  const relay = local && (peer as Peer & PartialHolder).partial?.(id) !== undefined;
  const range = request.headers.get("range");
  const free = await server.uploads.enter(id, { local, range, relay }, request.signal);
  if (!local && !head && ifNoneMatch === null && offersArrivingRead(peer)) {
    const arriving = request.headers.has("range")
      ? undefined
      : await peer.readArriving(id).catch((error) => {
        free?.(false);
        throw error;
      });
    if (arriving !== undefined) {
      // Each chunk goes as soon as its piece has verified.
      if (free !== undefined) info.completed.then(() => free(), () => free());
      const { object, body } = arriving;
      const headers = { ...objectHeaders(object, object.digest!), ...CREATING };
      return new Response(server.uploads.limit(body), { headers });
    }
  }
  // Watched from before the lease: a removal from then on cancels the offer.
  const watch = local || head ? undefined : server.nativeGet?.watch(id);
  try {
    return await read(server, route, id, { head, local, free, watch });
  } finally {
    if (watch !== undefined) server.nativeGet?.unwatch(watch);
  }
}

/** The GET or HEAD of `download` under a READ lease. */
async function read(
  server: ServerContext,
  { request, info }: RouteContext,
  id: string,
  { head, local, free, watch }: {
    head: boolean;
    local: boolean;
    free: ((sent?: boolean) => void) | undefined;
    watch: NativeGetWatch | undefined;
  },
): Promise<Response> {
  const peer = server.peer;
  const ifNoneMatch = request.headers.get("if-none-match");
  let acquired: Acquired;
  try {
    acquired = await peer.acquire(id, Access.READ, local ? { local } : {});
  } catch (error) {
    const partial =
      local && (error instanceof NotFoundError || error instanceof StoreUnavailableError)
        ? (peer as Peer & PartialHolder).partial?.(id)
        : undefined;
    if (partial === undefined || !request.headers.has("range")) {
      free?.(false);
      throw error;
    }
    let byTicket: NativeTicket | undefined;
    try {
      byTicket = relayByTicket(server, request, partial);
    } catch (error) {
      free?.(false);
      throw error;
    }
    if (byTicket !== undefined) {
      if (free !== undefined) byTicket.done.then(free);
      return new Response(null, { status: 206, headers: byTicket.headers });
    }
    let response: Response;
    try {
      response = server.uploads.partialRange(request, id, partial, info.completed);
    } catch (refused) {
      // Nothing went out: the range may be asked again at once.
      free?.(false);
      throw refused;
    }
    if (free !== undefined) info.completed.then(() => free(), () => free());
    return response;
  }
  let sent = false;
  try {
    const object = acquired.object;
    const digest = object.digest ?? await digestOf(server, acquired);
    if (noneMatch(ifNoneMatch, etagOf(digest))) return notModified(digest);
    const headers = objectHeaders(object, digest);
    if (watch !== undefined) offer(server, watch, acquired, headers);
    if (head) return new Response(null, { headers });
    const range = parseRange(request.headers.get("range"), object.size);
    const { bytes, status } = sentRange(range, object.size, headers);
    if (bytes.end === bytes.start) return new Response(null, { status, headers });
    const ticket = ticketOf(server, request, acquired, bytes, status, headers, local);
    if (ticket !== undefined) {
      // The listener sends the bytes from the memfd; the lease holds it until they are out.
      ticket.done.then((out) => {
        free?.(out);
        return peer.release(acquired.lease.id).catch(() => {});
      });
      sent = true;
      return new Response(null, { status, headers: ticket.headers });
    }
    const stream = await blobStream(acquired.blobs, bytes, true);
    const body = server.uploads.limit(stream);
    // Views of the blobs' memory are sent as they are: the lease holds
    // that memory until the response is out.
    const release = () => {
      free?.();
      return peer.release(acquired.lease.id).catch(() => {});
    };
    info.completed.then(release, release);
    sent = true;
    return new Response(body, { status, headers });
  } finally {
    if (!sent) {
      free?.(false);
      await peer.release(acquired.lease.id).catch(() => {});
    }
  }
}

/**
 * The bytes of a GET handed over by the native GET listener, given back to
 * it to send by ticket when they are one memfd's (with upload limits, or
 * for another daemon: `local`); undefined to answer as usual.
 */
function ticketOf(
  server: ServerContext,
  request: Request,
  acquired: Acquired,
  bytes: ByteRange,
  status: 200 | 206,
  headers: Record<string, string>,
  local: boolean,
): NativeTicket | undefined {
  const nativeGet = server.nativeGet;
  // Small objects (no memfd of their own yet) are answered as usual: cheaper than making one.
  const fd = acquired.blobs.length === 1 ? acquired.blobs[0]!.localFd : undefined;
  if (
    fd === undefined || nativeGet === undefined || !(local || nativeGet.tickets) ||
    !nativeGet.handedOver(request)
  ) {
    return undefined;
  }
  return nativeGet.ticket(fd, acquired.object.size, bytes, status === 206, headers);
}

/**
 * A verified range of an object still on its way here, handed over by the
 * native GET listener, given back to it to send by ticket from the memfd
 * the object lands in; its loan is given back once the bytes are out.
 * Undefined to answer as usual (and refuse a range not in yet).
 */
function relayByTicket(
  server: ServerContext,
  request: Request,
  partial: PartialObject,
): NativeTicket | undefined {
  const nativeGet = server.nativeGet;
  // Only another daemon's (`?local=1`) request gets here.
  if (partial.fd === undefined || nativeGet === undefined || !nativeGet.handedOver(request)) {
    return undefined;
  }
  const range = parseRange(request.headers.get("range"), partial.size);
  const lent = range === undefined ? undefined : partial.lend?.(range.start, range.end);
  if (range === undefined || lent === undefined) return undefined;
  let ticket: NativeTicket | undefined;
  try {
    ticket = nativeGet.ticket(partial.fd, partial.size, range, true, {
      "content-type": "application/octet-stream",
    });
  } finally {
    if (ticket === undefined) lent.done();
  }
  ticket?.done.then(lent.done);
  return ticket;
}

/** Hands the object read to the native GET listener; a failure there leaves the response as it is. */
function offer(
  server: ServerContext,
  watch: NativeGetWatch,
  acquired: Acquired,
  headers: Record<string, string>,
): void {
  try {
    server.nativeGet?.offer(watch, acquired.blobs, headers);
  } catch (error) {
    server.onError(error);
  }
}

/** DELETE /v1/objects/:id. */
export async function deleteObject(
  server: ServerContext,
  { params }: RouteContext,
): Promise<Response> {
  await removeObject(server.peer, deleteRequest(params.id));
  return new Response(null, { status: 204 });
}

/** GET /v1/objects/:id/info. */
export async function objectInfo(
  server: ServerContext,
  { params, url }: RouteContext,
): Promise<Response> {
  const local = url.searchParams.get("local") === "1";
  return Response.json(await statOf(server.peer, statRequest(params.id), local));
}

/** `stat`, or with `local` (`?local=1`) what this host alone knows, where the peer tells apart. */
function statOf(peer: Peer, id: string, local: boolean): Promise<ObjectInfo> {
  return local && offersLocalStat(peer) ? peer.statLocal(id) : peer.stat(id);
}

/** The digest of an object read under a lease, remembered by peers that can. */
async function digestOf(server: ServerContext, acquired: Acquired): Promise<string> {
  const digest = await computeDigest(acquired.blobs);
  await server.peer.recordDigest?.(acquired.lease.id, digest).catch(server.onError);
  return digest;
}

/** The metadata of an upload, from its `Packice-Meta` header (ASCII: one byte a character). */
function metaOf(server: ServerContext, request: Request): unknown {
  const text = request.headers.get(Header.META);
  if (text === null) return undefined;
  checkMetaSize(server, text.length);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(`Malformed ${Header.META} header: ${(error as Error).message}`);
  }
}

/** A TTL header's number, of digits only; any other text is left for the check to refuse. */
function ttlNumber(text: string): number | string {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : text;
}
