/**
 * The token file of a daemon that serves HTTP: `<socket>.token`, mode 0600,
 * its first line the bearer token and each further line a URL the daemon
 * serves with it. Clients of the same user read it, so a daemon needs no
 * token on its command line, where every user of the host could read it.
 *
 * @module
 */
import { toHex } from "../../core/hex.ts";
import { writeThroughTemporary } from "../../native/write_through_temporary.ts";

/** Where the daemon on `socket` keeps the token of its HTTP server. */
export function tokenFilePath(socket: string): string {
  return `${socket}.token`;
}

/** What a token file holds. */
export interface TokenFile {
  /** The bearer token. */
  readonly token: string;
  /** The base URLs served with it; empty in a file a person wrote with the token alone. */
  readonly urls: readonly string[];
}

/**
 * A fresh random token: 32 bytes in hex, so that it never starts with a dash
 * that a command line would take for an option.
 *
 * @returns The token.
 */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return toHex(bytes);
}

/**
 * Writes a token file only this user can read, through a new temporary file
 * and a rename, so that no reader sees half a file and nothing already at the
 * path (such as a link someone left in /tmp) is written through.
 *
 * @param path Where.
 * @param file The token and the URLs it serves.
 */
export async function writeTokenFile(path: string, file: TokenFile): Promise<void> {
  await writeThroughTemporary(path, async (temporary) => {
    await Deno.writeTextFile(temporary, [file.token, ...file.urls, ""].join("\n"), {
      createNew: true,
      mode: 0o600,
    });
  });
}

/**
 * Reads a token file: the token on its first line, URLs on the next ones.
 *
 * @param path The file.
 * @param options `ownOnly`: undefined unless no one but its owner may read or
 *   write the file (for files found by convention, not named).
 * @returns The file, or undefined when it is missing, empty or not trusted.
 */
export async function readTokenFile(
  path: string,
  options: { readonly ownOnly?: boolean } = {},
): Promise<TokenFile | undefined> {
  let text: string;
  try {
    if (options.ownOnly) {
      // A file that only its owner may read, and that this process can read, is this
      // user's (or root reads it): no uid to compare, which would need --allow-sys.
      const info = await Deno.stat(path);
      if (!info.isFile || ((info.mode ?? 0) & 0o077) !== 0) return undefined;
    }
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const [token = "", ...urls] = text.split("\n").map((line) => line.trim());
  if (token.length === 0) return undefined;
  return { token, urls: urls.filter((url) => url.length > 0) };
}
