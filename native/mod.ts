/**
 * The native side of Packice: `libpackice.so` (memfds, mappings, file I/O from
 * mapped memory, XXH64, Unix sockets with fd passing, epoll), how it is found
 * and loaded, how its errors become Packice errors, and mappings whose views
 * never outlive them.
 *
 * @module
 */
export { check, Errno, errnoError, errnoName, SystemError } from "./errno.ts";
export { Linux, NATIVE_ABI_VERSION, symbols } from "./ffi.ts";
export type { NativeSymbols } from "./ffi.ts";
export { ensureNative, loadNative } from "./load.ts";
export type { Native } from "./load.ts";
export { Mapping } from "./mapping.ts";
export type { MapOptions } from "./mapping.ts";
