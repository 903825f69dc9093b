import { formatDuration, formatSize } from "./format.ts";

/** How long a transfer runs before its bar appears: quick ones show none. */
const SHOW_AFTER_MS = 1000;
/** Redraws at most this often. */
const REDRAW_MS = 100;

const encoder = new TextEncoder();

/**
 * A progress bar on stderr for one transfer: bytes, rate and, when the total
 * is known, percentage and time left. It appears only when stderr is a
 * terminal and the transfer has taken more than a second, and draws over
 * itself on one line.
 */
export class Progress {
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #out: { writeSync(bytes: Uint8Array): number; isTerminal(): boolean };
  readonly #started = performance.now();
  readonly #enabled: boolean;
  #done = 0;
  #drawnAt = 0;
  #drawn = false;

  /**
   * @param label What moves, such as `put model.bin`.
   * @param total Bytes to move, when known.
   * @param out Where to draw: stderr.
   */
  constructor(
    label: string,
    total: number | undefined,
    out: { writeSync(bytes: Uint8Array): number; isTerminal(): boolean } = Deno.stderr,
  ) {
    this.#label = label;
    this.#total = total;
    this.#out = out;
    this.#enabled = out.isTerminal();
  }

  /** Adds bytes moved. */
  add(bytes: number): void {
    this.#done += bytes;
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#started < SHOW_AFTER_MS || now - this.#drawnAt < REDRAW_MS) return;
    this.#draw(now);
  }

  /** Draws the final state on its own line, when a bar was shown. Idempotent. */
  finish(): void {
    if (!this.#drawn) return;
    this.#draw(performance.now());
    this.#out.writeSync(encoder.encode("\n"));
    this.#drawn = false;
  }

  #draw(now: number): void {
    this.#drawnAt = now;
    this.#drawn = true;
    const seconds = (now - this.#started) / 1000;
    const rate = this.#done / Math.max(seconds, 1e-3);
    const parts = [this.#label];
    const width = columns();
    if (this.#total !== undefined && this.#total > 0) {
      const fraction = Math.min(this.#done / this.#total, 1);
      const left = rate > 0 ? (this.#total - this.#done) / rate : Infinity;
      const figures = `${(fraction * 100).toFixed(0).padStart(3)}% ${formatSize(this.#done)}/${
        formatSize(this.#total)
      } ${formatSize(rate)}/s ETA ${Number.isFinite(left) ? formatDuration(left) : "?"}`;
      const room = width - this.#label.length - figures.length - 5;
      if (room >= 10) {
        const bar = Math.min(room, 40);
        const filled = Math.round(fraction * bar);
        parts.push(`[${"#".repeat(filled)}${"-".repeat(bar - filled)}]`);
      }
      parts.push(figures);
    } else {
      parts.push(`${formatSize(this.#done)} ${formatSize(rate)}/s ${formatDuration(seconds)}`);
    }
    const line = parts.join(" ").slice(0, width - 1);
    // Erase what a longer line left, then draw.
    this.#out.writeSync(encoder.encode(`\r\x1b[2K${line}`));
  }
}

function columns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}
