import type { ObjectInfo } from "../core/object.ts";
import { formatSize } from "../daemon/size.ts";

export { formatSize };

/** What `--json` prints: the value as JSON, indented by two spaces. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** Seconds for people: `42s`, `3m 05s`, `2h 10m`, `3d 4h`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

/** An epoch time in milliseconds as UTC text to the second: `2026-12-06 16:16:43Z`. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** Rows of text columns, left-aligned but for columns named in `right`. */
export function table(rows: readonly string[][], right: ReadonlySet<number> = new Set()): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row.map((cell, i) =>
      i === row.length - 1 && !right.has(i)
        ? cell
        : right.has(i)
        ? cell.padStart(widths[i]!)
        : cell.padEnd(widths[i]!)
    ).join("  ")
  ).join("\n");
}

/** The lines of `packice stat`. */
export function describeObject(info: ObjectInfo): string {
  const rows: string[][] = [
    ["id", info.id],
    ["size", `${formatSize(info.size)} (${info.size} bytes)`],
    ["state", info.state],
    ["created", formatTime(info.createdAt)],
  ];
  if (info.sealedAt !== undefined) rows.push(["sealed", formatTime(info.sealedAt)]);
  if (info.expiresAt !== undefined) rows.push(["expires", formatTime(info.expiresAt)]);
  if (info.blobSizes.length > 1) rows.push(["blobs", info.blobSizes.join(", ")]);
  if (info.digest !== undefined) rows.push(["digest", info.digest]);
  if (info.tier !== undefined) rows.push(["tier", info.tier]);
  if (info.holders !== undefined) {
    rows.push(["holders", info.holders.map((holder) => holder.node).join(", ")]);
  }
  for (const [key, value] of Object.entries(info.meta)) {
    rows.push([`meta.${key}`, typeof value === "string" ? value : JSON.stringify(value)]);
  }
  return table(rows.map(([name, value]) => [`${name}:`, value!]));
}
