/**
 * Sets `key` to `value` as the newest entry of `map`, which keeps at most
 * `max` entries: the oldest one goes to make room. Maps keep insertion order,
 * so the first key is the one set longest ago.
 */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}
