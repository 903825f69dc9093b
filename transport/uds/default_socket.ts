/**
 * The socket a daemon serves on and `connect("local")` reaches when neither is
 * told another: `$XDG_RUNTIME_DIR/packice.sock`, else `/tmp/packice-<user>.sock`.
 *
 * @returns The path.
 *
 * @example
 * ```ts ignore
 * import { defaultSocketPath } from "@packice/packice";
 * console.log(defaultSocketPath()); // "/run/user/1000/packice.sock"
 * ```
 */
export function defaultSocketPath(): string {
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  if (runtime) return `${runtime}/packice.sock`;
  const user = Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? String(Deno.uid() ?? "user");
  return `/tmp/packice-${user}.sock`;
}
