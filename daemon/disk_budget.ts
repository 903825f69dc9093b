import { dirname, join, resolve } from "node:path";
import { loadNative } from "../native/load.ts";
import type { Logger } from "./log.ts";
import { formatSize } from "./size.ts";

const RESERVE = 64 * 1024 * 1024;

/**
 * The disk budget of a data directory: `asked`, or what its file system can
 * hold when that is less (its free bytes and the bytes already in `dir`).
 * A cache makes room by its budget, so a budget above the disk would leave a
 * full disk refusing every new object instead of dropping old ones; the
 * warning says so and what to do. Without the native library, `asked`.
 *
 * @param dir The data directory, which may not exist yet.
 * @param asked The budget the flag gave.
 * @param flag The flag, for the warning: `--capacity` or `--cold`.
 */
export async function diskBudget(
  dir: string,
  asked: number,
  flag: string,
  log: Logger | undefined,
): Promise<number> {
  const native = loadNative();
  if (native === undefined) return asked;
  let near = resolve(dir);
  let free = -1;
  for (;;) {
    free = Number(native.symbols.pk_statfs_room(new TextEncoder().encode(`${near}\0`)));
    if (free >= 0 || dirname(near) === near) break;
    near = dirname(near);
  }
  if (free < 0) return asked;
  // Metadata files, directories and the last block of each file take room too.
  const reserve = (bytes: number) => Math.min(RESERVE, Math.floor(bytes / 32));
  // The free space alone holds it: no need to walk a data directory of many files.
  if (asked <= free - reserve(free)) return asked;
  const held = await bytesUnder(dir);
  const room = Math.max(0, free + held - reserve(free + held));
  if (asked <= room) return asked;
  log?.warn(
    `${flag} ${formatSize(asked)} is more than the file system of ${dir} can hold (${
      formatSize(free)
    } free, ${formatSize(held)} of objects there): using ${
      formatSize(room)
    }; give ${flag} what the disk holds, or free space on it`,
  );
  return room;
}

/** The bytes of the files under `dir`; 0 when it does not exist. */
async function bytesUnder(dir: string): Promise<number> {
  let bytes = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) bytes += await bytesUnder(path);
      else if (entry.isFile) bytes += (await Deno.lstat(path)).size;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return bytes;
}
