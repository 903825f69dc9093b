import { totalSize } from "../../core/object.ts";
import type { ObjectInfo } from "../../core/object.ts";
import { MAX_META_BYTES, validateMeta } from "../../core/validate.ts";
import { writeAll } from "./io.ts";
import { blobFile, metaFile } from "./layout.ts";
import { FILE_MODE } from "./modes.ts";

/** The largest meta file read back: the metadata plus room for the other fields. */
const MAX_META_FILE_BYTES = MAX_META_BYTES + 64 * 1024;

const encoder = new TextEncoder();

/**
 * Writes `info` as the meta file of the object directory `dir` and flushes it to disk.
 *
 * @param dir The object directory.
 * @param info What to write.
 */
export async function writeMetaFile(dir: string, info: ObjectInfo): Promise<void> {
  using file = await Deno.open(metaFile(dir), {
    write: true,
    create: true,
    truncate: true,
    mode: FILE_MODE,
  });
  await writeAll(file, encoder.encode(JSON.stringify(info)));
  await file.sync();
}

/**
 * Reads back a sealed object directory: its meta file, and blob files that
 * match the meta file's `blobSizes`, with nothing else beside them.
 *
 * @param dir The object directory.
 * @param id The id its name says it holds.
 * @returns The object's info, or undefined when the directory is not a whole sealed object of `id`.
 */
export async function readSealedObject(dir: string, id: string): Promise<ObjectInfo | undefined> {
  try {
    const meta = await Deno.lstat(metaFile(dir));
    if (!meta.isFile || meta.size > MAX_META_FILE_BYTES) return undefined;
    const info = parseSealedInfo(JSON.parse(await Deno.readTextFile(metaFile(dir))), id);
    if (info === undefined) return undefined;
    let entries = 0;
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) return undefined;
      entries++;
    }
    if (entries !== info.blobSizes.length + 1) return undefined;
    for (const [index, size] of info.blobSizes.entries()) {
      const blob = await Deno.lstat(blobFile(dir, index));
      if (!blob.isFile || blob.size !== size) return undefined;
    }
    return info;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return undefined;
  }
}

/** The {@link ObjectInfo} of a sealed object `id` in parsed JSON, or undefined when it is not one. */
function parseSealedInfo(value: unknown, id: string): ObjectInfo | undefined {
  if (!isRecord(value) || value.id !== id || value.state !== "SEALED") return undefined;
  const { size, blobSizes, meta, createdAt, sealedAt, expiresAt, digest, tier } = value;
  if (!Array.isArray(blobSizes) || !blobSizes.every(isSize)) return undefined;
  if (size !== totalSize(blobSizes) || !isRecord(meta) || !isTime(createdAt)) return undefined;
  if (sealedAt !== undefined && !isTime(sealedAt)) return undefined;
  if (expiresAt !== undefined && !isTime(expiresAt)) return undefined;
  if (digest !== undefined && typeof digest !== "string") return undefined;
  if (tier !== undefined && typeof tier !== "string") return undefined;
  return {
    id,
    state: "SEALED",
    size,
    blobSizes,
    meta: validateMeta(meta),
    createdAt,
    ...(sealedAt === undefined ? {} : { sealedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(digest === undefined ? {} : { digest }),
    ...(tier === undefined ? {} : { tier }),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isSize(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}
