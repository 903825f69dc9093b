import { InvalidArgumentError } from "../core/errors.ts";

const units: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
};

/**
 * Parses a byte size such as `1048576`, `512MiB`, `8GiB` or `1.5GB`.
 *
 * @throws {InvalidArgumentError} When the text is not a size.
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = match ? units[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new InvalidArgumentError(
      `Invalid size: ${JSON.stringify(text)} (try 1048576, 512MiB, 8GiB)`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError(`Invalid size: ${text} is too large`);
  }
  return bytes;
}

/** Formats bytes for people: `8.0 GiB`. */
export function formatSize(bytes: number): string {
  const steps = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let step = 0;
  while (value >= 1024 && step < steps.length - 1) {
    value /= 1024;
    step++;
  }
  return step === 0 ? `${bytes} B` : `${value.toFixed(1)} ${steps[step]}`;
}
