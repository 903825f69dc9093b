/** Reading a server's `/metrics` in tests. */

/**
 * The value of the line `name` of the `/metrics` of the HTTP server at `url`,
 * asked with `token`; NaN when there is no such line.
 */
export async function readMetric(url: string, token: string, name: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}
