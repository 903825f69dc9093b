import { InvalidArgumentError } from "../../core/errors.ts";

/**
 * The socket path of a `connect()` target that names a Unix socket: an
 * absolute or relative path (`/run/packice.sock`, `./packice.sock`) or a
 * `unix://` URL (`unix:///run/packice.sock`).
 *
 * @param target What was passed to `connect()`.
 * @returns The path, or undefined for any other kind of target.
 * @throws {InvalidArgumentError} For a `unix:` URL without an absolute path.
 */
export function unixSocketPath(target: string): string | undefined {
  if (target.startsWith("/") || target.startsWith("./") || target.startsWith("../")) return target;
  if (!target.startsWith("unix:")) return undefined;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new InvalidArgumentError(`Invalid target: ${target}`);
  }
  const path = decodeURIComponent(url.pathname);
  if (url.host !== "" || !path.startsWith("/")) {
    throw new InvalidArgumentError(`Invalid target: ${target} (try unix:///path/to/packice.sock)`);
  }
  return path;
}
