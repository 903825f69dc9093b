import { InvalidArgumentError } from "../../core/errors.ts";

/** Where an HTTP server listens. */
export interface ListenAddress {
  /** Host name or IP address. */
  readonly hostname: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
}

/**
 * Parses `host:port`, `[ipv6]:port`, `:port` or `port`; a missing host is
 * the loopback address 127.0.0.1.
 *
 * @throws {InvalidArgumentError} When the text is not an address.
 *
 * @example
 * ```ts
 * import { parseListenAddress } from "@packice/packice";
 * console.log(parseListenAddress("[::1]:7070")); // { hostname: "::1", port: 7070 }
 * ```
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\[\]\s]*):)?(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) {
    throw new InvalidArgumentError(
      `Invalid HTTP address: ${JSON.stringify(text)} (try 127.0.0.1:7070)`,
    );
  }
  const host = match[1] ?? "";
  return { hostname: host === "" ? "127.0.0.1" : host.replace(/^\[(.*)\]$/, "$1"), port };
}

/**
 * Whether a host name or address only reaches this machine.
 *
 * @example
 * ```ts
 * import { isLoopback } from "@packice/packice";
 * console.log(isLoopback("127.0.0.1"), isLoopback("0.0.0.0")); // true false
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The host part of a URL for an address: IPv6 in brackets. */
export function urlHost(hostname: string, port: number): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}
