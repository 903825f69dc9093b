import { check, Errno, SystemError } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import type { Native } from "../../native/load.ts";
import { Reactor } from "../../native/reactor.ts";
import type { BlobFile, BlobFileOpener } from "./blob_file.ts";

/** Workers: one object's fsync overlaps the next one's write. */
const THREADS = 2;
/**
 * The workers' nice value: the lowest priority, so that the JS thread, on
 * waking, takes the CPU from them at once instead of waiting its turn.
 */
export const IO_NICE = 19;
/** Results taken per reap call. */
const REAP_BATCH = 64;
/**
 * Writes of at most this many bytes are copied first: V8 may move the bytes
 * of a small typed array, never those of a larger `ArrayBuffer`.
 */
const COPY_BELOW = 64 * 1024;

interface Job {
  readonly operation: string;
  readonly resolve: (result: number) => void;
  readonly reject: (error: unknown) => void;
  /** Memory the worker reads, kept reachable until the job is done. */
  readonly bytes: Uint8Array | undefined;
}

/**
 * Creates, writes and flushes blob files on native worker threads that run
 * at the lowest CPU priority ({@link IO_NICE}), one queue for the process;
 * each store takes an {@link NativeFileIo.opener} of its own on it.
 *
 * Copying bytes into the page cache costs as much CPU as the disk takes
 * bytes; on Deno's blocking pool that work competes as an equal with the JS
 * thread, which then waits in the run queue whenever every core is busy. Here a job is queued by a synchronous call that only
 * takes a mutex, and results come back through an eventfd that the
 * process's {@link Reactor} watches while jobs are under way.
 *
 * A write reads the caller's memory while it runs, as Deno's own writes do:
 * the bytes must not be detached or reused until it resolves.
 */
export class NativeFileIo implements BlobFileOpener {
  static #shared: NativeFileIo | undefined;

  /**
   * The process's queue, its workers started on first use.
   *
   * @param native The native library.
   * @returns The shared queue.
   */
  static of(native: Native): NativeFileIo {
    NativeFileIo.#shared ??= new NativeFileIo(native);
    return NativeFileIo.#shared;
  }

  readonly #native: Native;
  readonly #jobs = new Map<number, Job>();
  readonly #ids = new Uint32Array(REAP_BATCH);
  readonly #results = new BigInt64Array(REAP_BATCH);
  #started: { handle: Deno.PointerObject; eventfd: number } | undefined;
  #nextId = 1;
  /** The Reactor registration, while jobs are under way. */
  #token: number | undefined;
  /** Settles once no job is under way and the reactor has stopped watching for results. */
  #idle: Promise<void> = Promise.resolve();
  #becomeIdle: (() => void) | undefined;

  private constructor(native: Native) {
    this.#native = native;
  }

  /** Creates a new file of `size` bytes (it must not exist), open for reading and writing. */
  async create(path: string, size: number): Promise<BlobFile> {
    const fd = await this.#submit(
      "create file",
      undefined,
      (handle, id) =>
        this.#native.symbols.pk_io_create_file(
          handle,
          id,
          new TextEncoder().encode(`${path}\0`),
          BigInt(size),
        ),
    );
    return new NativeBlobFile(this, this.#native, fd);
  }

  /** Writes all of `bytes` to `fd` at `offset`. */
  async write(fd: number, offset: number, bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    const kept = bytes.length <= COPY_BELOW ? new Uint8Array(new ArrayBuffer(bytes.length)) : bytes;
    if (kept !== bytes) kept.set(bytes);
    const source = Deno.UnsafePointer.of(kept);
    await this.#submit("write", kept, (handle, id) =>
      this.#native.symbols.pk_io_pwrite(
        handle,
        id,
        fd,
        source,
        BigInt(kept.length),
        BigInt(offset),
      ));
  }

  /** Flushes `fd` to disk. */
  async sync(fd: number): Promise<void> {
    await this.#submit(
      "fsync",
      undefined,
      (handle, id) => this.#native.symbols.pk_io_fsync(handle, id, fd),
    );
  }

  /**
   * Settles once no job of the queue, whoever queued it, is under way and
   * the reactor no longer watches for results (it has stopped, if this was
   * its last registration); jobs queued meanwhile are waited for too.
   */
  idle(): Promise<void> {
    return this.#idle;
  }

  /** How many jobs of the queue are under way. */
  get underWay(): number {
    return this.#jobs.size;
  }

  /**
   * An opener on this queue whose `idle()` waits for the jobs started
   * through it only: one per store, so that a store's close never waits for
   * another store's work.
   */
  opener(): BlobFileOpener {
    return new OwnJobs(this);
  }

  #submit(
    operation: string,
    bytes: Uint8Array | undefined,
    queue: (handle: Deno.PointerObject, id: number) => number,
  ): Promise<number> {
    const { handle } = this.#start();
    const id = this.#nextId;
    this.#nextId = id === 0xffff_ffff ? 1 : id + 1;
    return new Promise<number>((resolve, reject) => {
      this.#watch();
      const queued = queue(handle, id);
      if (queued < 0) {
        this.#unwatchWhenIdle();
        reject(new SystemError(operation, -queued));
        return;
      }
      this.#jobs.set(id, { operation, resolve, reject, bytes });
    });
  }

  #start(): { handle: Deno.PointerObject; eventfd: number } {
    if (this.#started) return this.#started;
    const out = new BigUint64Array(1);
    const eventfd = check(
      this.#native.symbols.pk_io_start(THREADS, IO_NICE, out),
      "starting the I/O threads",
    );
    this.#started = { handle: Deno.UnsafePointer.create(out[0]!)!, eventfd };
    return this.#started;
  }

  /** Watches the eventfd while jobs are under way: a registration keeps the process alive. */
  #watch(): void {
    if (this.#token !== undefined) return;
    this.#token = Reactor.of(this.#native).add(this.#started!.eventfd, Linux.EPOLLIN, {
      ready: () => this.#reap(),
    });
    // A watch ending now is still awaited: the next idle follows it.
    const ending = this.#idle;
    this.#idle = new Promise<void>((resolve) => this.#becomeIdle = resolve).then(() => ending);
  }

  #reap(): void {
    const { handle } = this.#started!;
    for (;;) {
      const count = this.#native.symbols.pk_io_reap(handle, this.#ids, this.#results, REAP_BATCH);
      for (let i = 0; i < count; i++) {
        const id = this.#ids[i]!;
        const result = Number(this.#results[i]!);
        const job = this.#jobs.get(id);
        if (job === undefined) continue;
        this.#jobs.delete(id);
        if (result < 0) job.reject(new SystemError(job.operation, -result));
        else job.resolve(result);
      }
      if (count < REAP_BATCH) break;
    }
    this.#unwatchWhenIdle();
  }

  #unwatchWhenIdle(): void {
    if (this.#jobs.size > 0 || this.#token === undefined) return;
    const token = this.#token;
    const becomeIdle = this.#becomeIdle!;
    this.#token = undefined;
    this.#becomeIdle = undefined;
    Reactor.of(this.#native).remove(this.#started!.eventfd, token).catch((error) => {
      console.error("Packice: stopping the watch of the I/O threads failed:", error);
    }).finally(becomeIdle);
  }
}

/** The jobs started through one {@link NativeFileIo.opener}. */
class OwnJobs implements BlobFileOpener {
  readonly #io: NativeFileIo;
  #underWay = 0;
  #idle: Promise<void> = Promise.resolve();
  #becomeIdle: ((settled: Promise<void>) => void) | undefined;

  constructor(io: NativeFileIo) {
    this.#io = io;
  }

  async create(path: string, size: number): Promise<BlobFile> {
    return new OwnBlobFile(await this.track(this.#io.create(path, size)), this);
  }

  /**
   * Settles once no job started through this opener is under way and, when
   * they were the queue's last, the reactor no longer watches for results.
   */
  idle(): Promise<void> {
    return this.#idle;
  }

  /** Counts `job` as this opener's until it settles; returns it. */
  track<T>(job: Promise<T>): Promise<T> {
    if (this.#underWay++ === 0) this.#idle = new Promise((resolve) => this.#becomeIdle = resolve);
    return job.finally(() => {
      if (--this.#underWay > 0) return;
      this.#becomeIdle!(this.#io.underWay === 0 ? this.#io.idle() : Promise.resolve());
    });
  }
}

/** A file made through an {@link OwnJobs}: its writes and flushes are counted there. */
class OwnBlobFile implements BlobFile {
  readonly #file: BlobFile;
  readonly #jobs: OwnJobs;

  constructor(file: BlobFile, jobs: OwnJobs) {
    this.#file = file;
    this.#jobs = jobs;
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    return this.#jobs.track(this.#file.write(offset, bytes));
  }

  readInto(offset: number, target: Uint8Array): Promise<boolean> {
    return this.#file.readInto(offset, target);
  }

  sync(): Promise<void> {
    return this.#jobs.track(this.#file.sync());
  }

  close(): void {
    this.#file.close();
  }
}

/** A blob file opened by the worker threads: writes and flushes run there, reads here. */
class NativeBlobFile implements BlobFile {
  readonly #io: NativeFileIo;
  readonly #native: Native;
  #fd: number;

  constructor(io: NativeFileIo, native: Native, fd: number) {
    this.#io = io;
    this.#native = native;
    this.#fd = fd;
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    return this.#io.write(this.#open("write"), offset, bytes);
  }

  /**
   * Reads on the JS thread: only an object being created is read from this
   * file, rarely, and what was just written is in the page cache.
   */
  readInto(offset: number, target: Uint8Array): Promise<boolean> {
    const read = this.#native.symbols.pk_pread_all(
      this.#open("read"),
      target,
      BigInt(target.length),
      BigInt(offset),
    );
    if (read < 0) return Promise.reject(new SystemError("read", -Number(read)));
    return Promise.resolve(Number(read) === target.length);
  }

  sync(): Promise<void> {
    return this.#io.sync(this.#open("fsync"));
  }

  close(): void {
    if (this.#fd < 0) return;
    this.#native.symbols.pk_close(this.#fd);
    this.#fd = -1;
  }

  #open(operation: string): number {
    if (this.#fd < 0) throw new SystemError(operation, Errno.EBADF);
    return this.#fd;
  }
}
