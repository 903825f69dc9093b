/**
 * Questions a fetcher asks a holder besides its pieces: the object's
 * metadata, and whether it is alive at all.
 *
 * @module
 */
import type { ObjectInfo } from "../core/object.ts";
import type { Meta } from "../core/validate.ts";
import type { ContentRecord, Holder } from "./directory.ts";
import { SourceError } from "./source_error.ts";

/**
 * The metadata of the record's object as `holder` has it, checked against the record.
 *
 * @throws {SourceError} When the holder does not answer, or holds something else.
 */
export async function metaFrom(
  holder: Holder,
  record: ContentRecord,
  token: string | undefined,
  signal: AbortSignal,
): Promise<Meta> {
  const info = await infoFrom(holder, record.id, token, signal);
  if (info.state !== "SEALED" || info.size !== record.size) {
    throw new SourceError(
      "length",
      holder,
      `holds ${record.id} as ${info.state} of ${info.size} bytes, not SEALED of ${record.size}`,
    );
  }
  return info.meta ?? {};
}

/**
 * What `holder` knows of object `id` on its own host (`GET /v1/objects/:id/info?local=1`).
 *
 * @throws {SourceError} When the holder does not answer, or not with 200.
 */
export async function infoFrom(
  holder: Holder,
  id: string,
  token: string | undefined,
  signal: AbortSignal,
): Promise<Partial<ObjectInfo>> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  try {
    const response = await fetch(
      `${holder.address}/v1/objects/${encodeURIComponent(id)}/info?local=1`,
      { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(4000)]) },
    );
    if (!response.ok) {
      await response.body?.cancel();
      const fault = response.status === 404 ? "missing" : "status";
      throw new SourceError(fault, holder, `answered ${response.status} to info`);
    }
    return await response.json();
  } catch (error) {
    if (error instanceof SourceError || signal.aborted) throw error;
    throw new SourceError("unreachable", holder, (error as Error).message, { cause: error });
  }
}

/** Whether `holder` answers `GET /healthz` within 2 s. */
export async function healthy(holder: Holder, signal: AbortSignal): Promise<boolean> {
  try {
    const response = await fetch(`${holder.address}/healthz`, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}
