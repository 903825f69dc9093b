/**
 * A hostile client's fds for tests: a thread (hostile_fd.c, built here with
 * `cc` into a temporary directory, never into libpackice) that shrinks and
 * grows a memfd, or adds seals to it, while a daemon takes it over; and fds
 * of every kind that is not an unsealed memfd.
 */
import type { Native } from "../../native/load.ts";

const symbols = {
  /** void *hf_race_start(int32_t fd, int32_t mode, int64_t a, int64_t b) */
  hf_race_start: { parameters: ["i32", "i32", "i64", "i64"], result: "pointer" },
  /** int64_t hf_race_stop(void *handle) */
  hf_race_stop: { parameters: ["pointer"], result: "i64" },
  /** int32_t hf_open(const char *path, int32_t flags) */
  hf_open: { parameters: ["buffer", "i32"], result: "i32" },
  /** int32_t hf_pipe(int32_t *out) */
  hf_pipe: { parameters: ["buffer"], result: "i32" },
  /** int32_t hf_socket(void) */
  hf_socket: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `MFD_ALLOW_SEALING` of memfd_create(2). */
export const MFD_ALLOW_SEALING = 2;
/** `MFD_HUGETLB` of memfd_create(2). */
export const MFD_HUGETLB = 4;

/** One thread racing a memfd; stop it before the fd is closed. */
export interface Race {
  /** Stops and joins the thread; returns how many rounds it ran. */
  stop(): number;
}

/** The hostile library, loaded once built. */
export class Hostile implements Disposable {
  readonly #library: Deno.DynamicLibrary<typeof symbols>;
  readonly #dir: string;

  private constructor(library: Deno.DynamicLibrary<typeof symbols>, dir: string) {
    this.#library = library;
    this.#dir = dir;
  }

  /** Builds hostile_fd.c with `cc` and loads it. */
  static async build(): Promise<Hostile> {
    const dir = await Deno.makeTempDir({ prefix: "packice-hostile-" });
    const out = `${dir}/hostile_fd.so`;
    const source = new URL("hostile_fd.c", import.meta.url).pathname;
    const { code, stderr } = await new Deno.Command("cc", {
      args: ["-O2", "-shared", "-fPIC", "-pthread", "-o", out, source],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      await Deno.remove(dir, { recursive: true });
      throw new Error(`cc hostile_fd.c failed: ${new TextDecoder().decode(stderr)}`);
    }
    return new Hostile(Deno.dlopen(out, symbols), dir);
  }

  /** Shrinks `fd` to `small` bytes and grows it back to `big`, over and over. */
  toggle(fd: number, big: number, small: number): Race {
    return this.#start(fd, 0, small, big);
  }

  /** Adds `seals` to `fd` after `spins` rounds of spinning. */
  sealAfter(fd: number, spins: number, seals: number): Race {
    return this.#start(fd, 1, spins, seals);
  }

  /** open(2) of `path` with `flags` (`O_CLOEXEC` is added); throws on failure. */
  open(path: string, flags: number): number {
    const fd = this.#library.symbols.hf_open(new TextEncoder().encode(`${path}\0`), flags);
    if (fd < 0) throw new Error(`open ${path} failed: errno ${-fd}`);
    return fd;
  }

  /** A pipe's read and write ends. */
  pipe(): [number, number] {
    const out = new Int32Array(2);
    const result = this.#library.symbols.hf_pipe(out);
    if (result < 0) throw new Error(`pipe failed: errno ${-result}`);
    return [out[0]!, out[1]!];
  }

  /** An unconnected Unix stream socket. */
  socket(): number {
    const fd = this.#library.symbols.hf_socket();
    if (fd < 0) throw new Error(`socket failed: errno ${-fd}`);
    return fd;
  }

  #start(fd: number, mode: number, a: number, b: number): Race {
    const handle = this.#library.symbols.hf_race_start(fd, mode, BigInt(a), BigInt(b));
    if (handle === null) throw new Error("hf_race_start failed");
    let stopped: number | undefined;
    return {
      stop: () => stopped ??= Number(this.#library.symbols.hf_race_stop(handle)),
    };
  }

  /** Unloads the library and removes its build. */
  [Symbol.dispose](): void {
    this.#library.close();
    Deno.removeSync(this.#dir, { recursive: true });
  }
}

/** A memfd of `size` bytes made with `flags` (`MFD_CLOEXEC` is added). */
export function memfd(native: Native, size: number, flags = MFD_ALLOW_SEALING): number {
  const fd = native.symbols.pk_memfd_create(new TextEncoder().encode("hostile\0"), flags);
  if (fd < 0) throw new Error(`memfd_create failed: errno ${-fd}`);
  const cut = native.symbols.pk_ftruncate(fd, BigInt(size));
  if (cut < 0) throw new Error(`ftruncate failed: errno ${-cut}`);
  return fd;
}

/** Flags of open(2). */
export const O = { RDONLY: 0, WRONLY: 1, RDWR: 2, CREAT: 0o100, DIRECTORY: 0o200000 } as const;
