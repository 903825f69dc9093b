/**
 * The symbol table of `libpackice.so` (native/packice.c), one idea, hence
 * its length: each symbol with its C signature beside it. Every function
 * returns >= 0 on success and `-errno` on failure; pointer results go through
 * out-parameter buffers. `"buffer"` parameters take typed arrays (memory JS
 * owns, or a view of a mapping); `"pointer"` parameters take handles such as
 * a mapping's address. Calls that may take long have a `_nb` twin that runs
 * on Deno's blocking thread pool (`nonblocking: true`) and returns a promise;
 * the twins take pointers to mapped memory or to `pk_alloc` memory, which
 * neither garbage collection nor the runtime's teardown at exit can free
 * while the call runs.
 *
 * @module
 */

/** The ABI version native/packice.c reports from `pk_version()`. */
export const NATIVE_ABI_VERSION = 26;

/** The symbols of `libpackice.so`, for `Deno.dlopen`. */
export const symbols = {
  // Grouped and numbered as the sections of native/packice.c (its section 2
  // holds only helpers that the library does not export).
  // 1. Library: ABI version and pinning
  /** int32_t pk_version(void) */
  pk_version: { parameters: [], result: "i32" },
  /** int32_t pk_pin(void): keeps the library mapped through dlclose, for `_nb` calls at exit */
  pk_pin: { parameters: [], result: "i32" },

  // 3. memfd and seals, and the memfd pool's calls
  pk_memfd_create: {
    parameters: [
      "buffer", // const char *name (NUL-terminated)
      "u32", // uint32_t flags (MFD_CLOEXEC is always added)
    ],
    result: "i32", // fd
  },
  pk_ftruncate: {
    parameters: [
      "i32", // int32_t fd
      "i64", // int64_t size
    ],
    result: "i32",
  },
  pk_fstat_size: {
    parameters: [
      "i32", // int32_t fd
    ],
    result: "i64", // size in bytes
  },
  pk_fstatfs_type: {
    parameters: [
      "i32", // int32_t fd
    ],
    result: "i64", // statfs f_type, such as Linux.TMPFS_MAGIC
  },
  pk_statfs_room: {
    parameters: [
      "buffer", // const char *path (NUL-terminated)
    ],
    result: "i64", // bytes free for this user on the file system of path (statfs f_bavail)
  },
  pk_add_seals: {
    parameters: [
      "i32", // int32_t fd
      "i32", // int32_t seals (F_SEAL_*)
    ],
    result: "i32",
  },
  pk_get_seals: {
    parameters: [
      "i32", // int32_t fd
    ],
    result: "i32", // seals
  },
  pk_close: {
    parameters: [
      "i32", // int32_t fd
    ],
    result: "i32",
  },
  pk_dup: {
    parameters: [
      "i32", // int32_t fd
    ],
    result: "i32", // new fd, close-on-exec
  },
  pk_fd_identity: {
    parameters: [
      "i32", // int32_t fd
      "buffer", // uint64_t *out (device, inode)
    ],
    result: "i32",
  },
  pk_memfd_prepare: {
    parameters: [
      "u64", // uint64_t size
      "i32", // int32_t populate
      "buffer", // int32_t *out_fd
      "buffer", // uint64_t *out_ptr (null: unmapped)
    ],
    result: "i32",
  },
  /** int32_t pk_reopen_readonly(int32_t fd): a read-only descriptor of its file, for mappings that leave F_SEAL_WRITE possible */
  pk_reopen_readonly: { parameters: ["i32"], result: "i32" },
  /** void *pk_alloc(uint64_t size): zeroed memory for `_nb` calls' out-parameters, or null */
  pk_alloc: {
    parameters: [
      "u64", // uint64_t size
    ],
    result: "pointer",
  },
  /** void pk_free(void *ptr) */
  pk_free: {
    parameters: [
      "pointer", // void *ptr (from pk_alloc)
    ],
    result: "void",
  },
  pk_memfd_prepare_many_nb: {
    name: "pk_memfd_prepare_many",
    parameters: [
      "u32", // uint32_t count
      "u64", // uint64_t size
      "i32", // int32_t populate
      "pointer", // int32_t *out_fds (pk_alloc memory, count entries, each stored when ready)
      "pointer", // uint64_t *out_ptrs (pk_alloc memory, count entries; null: unmapped)
      "pointer", // int32_t *out_done (pk_alloc memory, stored last: the result)
    ],
    result: "i32", // how many were prepared
    nonblocking: true,
  },
  pk_close_many_nb: {
    name: "pk_close_many",
    parameters: [
      "pointer", // const int32_t *fds (pk_alloc memory)
      "u32", // uint32_t count
    ],
    result: "i32",
    nonblocking: true,
  },
  pk_unmap_seal_nb: {
    name: "pk_unmap_seal",
    parameters: [
      "i32", // int32_t fd
      "pointer", // void *ptr (null: nothing to unmap)
      "u64", // uint64_t len
      "i32", // int32_t seals (F_SEAL_*)
    ],
    result: "i32",
    nonblocking: true,
  },
  pk_unmap_close_nb: {
    name: "pk_unmap_close",
    parameters: [
      "i32", // int32_t fd
      "pointer", // void *ptr (null: nothing to unmap)
      "u64", // uint64_t len
    ],
    result: "i32",
    nonblocking: true,
  },
  pk_recycle_nb: {
    name: "pk_recycle",
    parameters: [
      "i32", // int32_t fd
      "pointer", // void *ptr (its read-write mapping of capacity bytes)
      "u64", // uint64_t size (the freed object's, whose bytes stay)
      "u64", // uint64_t capacity
      "pointer", // int32_t *out_fd (pk_alloc memory, stored when ready)
      "pointer", // int32_t *out_done (pk_alloc memory, stored last: 1 or -errno)
    ],
    result: "i32",
    nonblocking: true,
  },

  // 4. Mappings and copies into and out of them
  pk_mmap: {
    parameters: [
      "i32", // int32_t fd
      "u64", // uint64_t len
      "i64", // int64_t offset
      "i32", // int32_t writable
      "i32", // int32_t populate
      "buffer", // uint64_t *out_ptr
    ],
    result: "i32",
  },
  pk_munmap: {
    parameters: [
      "pointer", // void *ptr
      "u64", // uint64_t len
    ],
    result: "i32",
  },
  pk_munmap_nb: {
    name: "pk_munmap",
    parameters: [
      "pointer", // void *ptr
      "u64", // uint64_t len
    ],
    result: "i32",
    nonblocking: true,
  },
  pk_munmap_once: {
    parameters: [
      "pointer", // void *ptr
      "u64", // uint64_t len
    ],
    result: "i32",
  },
  pk_munmap_once_nb: {
    name: "pk_munmap_once",
    parameters: [
      "pointer", // void *ptr
      "u64", // uint64_t len
    ],
    result: "i32",
    nonblocking: true,
  },
  pk_copy_in: {
    parameters: [
      "pointer", // void *dst (mapped memory)
      "buffer", // const void *src
      "u64", // uint64_t len
    ],
    result: "void",
  },
  pk_copy_out: {
    parameters: [
      "buffer", // void *dst
      "pointer", // const void *src (mapped memory)
      "u64", // uint64_t len
    ],
    result: "void",
  },
  pk_zero: {
    parameters: [
      "pointer", // void *dst (mapped memory)
      "u64", // uint64_t len
    ],
    result: "void",
  },

  // 5. Files: I/O from and to memory, and the background I/O queue of the disk
  // tier (backends/fs/native_io.ts): worker threads at a low priority, results
  // reaped when the eventfd is readable
  pk_pwrite_all: {
    parameters: [
      "i32", // int32_t fd
      "buffer", // const void *ptr (JS memory or a view of a mapping)
      "u64", // uint64_t len
      "i64", // int64_t off
    ],
    result: "i64", // bytes written
  },
  pk_pwrite_all_nb: {
    name: "pk_pwrite_all",
    parameters: [
      "i32", // int32_t fd
      "pointer", // const void *ptr (memory kept alive until the call is done)
      "u64", // uint64_t len
      "i64", // int64_t off
    ],
    result: "i64", // bytes written
    nonblocking: true,
  },
  pk_pread_all: {
    parameters: [
      "i32", // int32_t fd
      "buffer", // void *ptr (JS memory or a view of a mapping)
      "u64", // uint64_t len
      "i64", // int64_t off
    ],
    result: "i64", // bytes read, fewer at end of file
  },
  pk_copy_file_range_all_nb: {
    name: "pk_copy_file_range_all",
    parameters: [
      "i32", // int32_t fd_in
      "i64", // int64_t off_in
      "i32", // int32_t fd_out
      "i64", // int64_t off_out
      "u64", // uint64_t len
    ],
    result: "i64", // bytes copied, fewer at end of file
    nonblocking: true,
  },
  // pk_open: used only by tests of real behaviour: a sealed memfd reopened
  // through /proc/self/fd stays sealed (tests/helpers/uds_child.ts), a plain
  // file is refused as a blob (tests/transport/uds/uds_write_ahead_test.ts),
  // /dev/full gives ENOSPC (tests/backends/fs/tiered_io_test.ts).
  pk_open: {
    parameters: [
      "buffer", // const char *path (NUL-terminated)
      "i32", // int32_t flags (O_CLOEXEC is always added)
      "u32", // uint32_t mode
    ],
    result: "i32", // fd
  },
  pk_io_start: {
    parameters: [
      "i32", // int32_t threads
      "i32", // int32_t nice (of the workers)
      "buffer", // uint64_t *out_handle
    ],
    result: "i32", // the eventfd
  },
  pk_io_create_file: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t id
      "buffer", // const char *path (NUL-terminated, copied)
      "i64", // int64_t size
    ],
    result: "i32", // 0 once queued; the job's result is the fd
  },
  pk_io_pwrite: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t id
      "i32", // int32_t fd
      "pointer", // const void *src (valid until the result is reaped)
      "u64", // uint64_t len
      "i64", // int64_t off
    ],
    result: "i32", // 0 once queued; the job's result is the bytes written
  },
  pk_io_fsync: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t id
      "i32", // int32_t fd
    ],
    result: "i32", // 0 once queued
  },
  pk_io_reap: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint32_t *out_ids (max entries)
      "buffer", // int64_t *out_results (max entries)
      "i32", // int32_t max
    ],
    result: "i32", // finished jobs taken
  },

  // 6. Unix sockets and SCM_RIGHTS (SOCK_SEQPACKET, non-blocking, close-on-exec)
  pk_uds_listen: {
    parameters: [
      "buffer", // const char *path (NUL-terminated)
      "i32", // int32_t backlog
    ],
    result: "i32", // listening fd
  },
  pk_uds_connect: {
    parameters: [
      "buffer", // const char *path (NUL-terminated)
    ],
    result: "i32", // connected fd; -EAGAIN when the backlog is full
  },
  pk_accept: {
    parameters: [
      "i32", // int32_t lfd
    ],
    result: "i32", // connected fd; -EAGAIN when none is waiting
  },
  pk_sendmsg: {
    parameters: [
      "i32", // int32_t fd
      "buffer", // const void *buf
      "u64", // uint64_t len
      "buffer", // const int32_t *fds (may be null)
      "u32", // uint32_t nfds
    ],
    result: "i64", // bytes sent
  },
  pk_recvmsg: {
    parameters: [
      "i32", // int32_t fd
      "buffer", // void *buf
      "u64", // uint64_t cap
      "buffer", // int32_t *fds_out
      "u32", // uint32_t max_fds
      "buffer", // int32_t *out_nfds
      "buffer", // int32_t *out_flags (MSG_TRUNC, MSG_CTRUNC)
    ],
    result: "i64", // bytes received; 0 when the peer closed
  },
  pk_raise_nofile_limit: { parameters: [], result: "i64" }, // the new soft limit

  // 7. epoll, eventfd and the reactor (native/reactor.ts)
  // pk_epoll_create and pk_epoll_wait: used only by bench/uds_bench.ts's own
  // server loop (and tests/native/native_test.ts); the reactor uses pk_epoll_ctl
  // to change what it watches on a fd.
  pk_epoll_create: { parameters: [], result: "i32" },
  pk_epoll_ctl: {
    parameters: [
      "i32", // int32_t epfd
      "i32", // int32_t op (EPOLL_CTL_*)
      "i32", // int32_t fd
      "u32", // uint32_t events (EPOLL*)
      "u64", // uint64_t data
    ],
    result: "i32",
  },
  pk_epoll_wait: {
    parameters: [
      "i32", // int32_t epfd
      "buffer", // uint64_t *out_data (max entries)
      "buffer", // uint32_t *out_events (max entries)
      "i32", // int32_t max (at most 1024)
      "i32", // int32_t timeout_ms (-1: forever)
    ],
    result: "i32", // ready entries; 0 on timeout or signal
  },
  // pk_eventfd: used only by tests of real behaviour: an fd that is not a
  // memfd sent to a server (tests/transport/uds/hostile_fds_test.ts), an fd
  // always ready for the reactor (tests/native/reactor_teardown_test.ts).
  pk_eventfd: { parameters: [], result: "i32" }, // non-blocking, close-on-exec
  pk_reactor_start: {
    parameters: [
      "function", // void (*ready)(int32_t count): a Deno.UnsafeCallback.threadSafe, or null
      "i32", // int32_t max (events per wait, at most 1024)
      "buffer", // uint64_t *out_handle
      "buffer", // uint64_t *out_slots (2 * max uint32: token, events)
    ],
    result: "i32", // the epoll fd
  },
  pk_reactor_add: {
    parameters: [
      "pointer", // void *handle
      "i32", // int32_t fd
      "u32", // uint32_t events (EPOLL*)
      "u32", // uint32_t token
    ],
    result: "i32",
  },
  pk_reactor_remove: {
    parameters: [
      "pointer", // void *handle
      "i32", // int32_t fd
    ],
    result: "i32",
  },
  pk_reactor_tie: {
    parameters: [
      "pointer", // void *handle (without a thread)
    ],
    result: "i32", // the read end of its pipe
  },
  pk_reactor_watch: {
    parameters: [
      "pointer", // void *handle (tied)
      "i32", // int32_t reader (closed here)
    ],
    result: "i32",
  },
  pk_reactor_will_wait: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32",
  },
  pk_reactor_wait_nb: {
    name: "pk_reactor_wait",
    parameters: [
      "pointer", // void *handle (announced with pk_reactor_will_wait)
    ],
    result: "i32", // ready entries in the slots (> 0); -ECANCELED once stopped
    nonblocking: true,
  },
  pk_reactor_stop: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32",
  },
  pk_reactor_join_nb: {
    name: "pk_reactor_join",
    parameters: [
      "pointer", // void *handle (stopped, with a thread)
    ],
    result: "i32",
    nonblocking: true,
  },
  pk_reactor_close: {
    parameters: [
      "pointer", // void *handle (stopped, without a thread, its waits returned)
    ],
    result: "i32",
  },
  pk_reactor_abandon: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32",
  },
  pk_reactor_lend: {
    parameters: [
      "pointer", // void *handle
      "i64", // int64_t budget_ns
    ],
    result: "i32",
  },
  pk_reactor_reclaim: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32",
  },
  pk_reactor_poll: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint32_t *slots (2 * max: token, events)
      "i32", // int32_t max
      "i64", // int64_t spin_ns
      "buffer", // int64_t out[2]: time waited, whether the spin lost the CPU
    ],
    result: "i32", // ready entries; 0 once the lend's budget has run out
  },

  // 8. Hashing: XXH64, SHA-256 (with the x86 SHA extensions where the CPU has
  // them) and BLAKE3 (AVX-512 or AVX2 where the CPU has them)
  pk_hash64: {
    parameters: [
      "buffer", // const void *ptr (JS memory or a view of a mapping)
      "u64", // uint64_t len
      "u64", // uint64_t seed
    ],
    result: "u64", // XXH64
  },
  // pk_sha256_accel: used only by tests/p2p/sha256_test.ts, to run the digests
  // through the plain-C path on a CPU with the SHA extensions.
  pk_sha256_accel: {
    parameters: [
      "i32", // int32_t force_c: 1 plain C from now on, 0 look at the CPU again, -1 neither
    ],
    result: "i32", // 1 when the SHA extensions are used
  },
  pk_sha256_ctx_size: { parameters: [], result: "i32" },
  pk_sha256_init: {
    parameters: [
      "buffer", // void *ctx (pk_sha256_ctx_size bytes)
    ],
    result: "void",
  },
  pk_sha256_update: {
    parameters: [
      "buffer", // void *ctx
      "buffer", // const void *data
      "u64", // uint64_t len
    ],
    result: "void",
  },
  pk_sha256_update_nb: {
    name: "pk_sha256_update",
    parameters: [
      "pointer", // void *ctx
      "pointer", // const void *data
      "u64", // uint64_t len
    ],
    result: "void",
    nonblocking: true,
  },
  pk_sha256_final: {
    parameters: [
      "buffer", // void *ctx
      "buffer", // void *out (32 bytes)
    ],
    result: "void",
  },
  pk_sha256_nb: {
    name: "pk_sha256",
    parameters: [
      "pointer", // const void *data
      "u64", // uint64_t len
      "pointer", // void *out (32 bytes)
    ],
    result: "void",
    nonblocking: true,
  },
  // pk_blake3_lanes: used by tests and benches, to run each path on one CPU.
  pk_blake3_lanes: {
    parameters: [
      "i32", // int32_t most: > 0 caps the lanes (1 plain C, 8 AVX2, 16 AVX-512), 0 the CPU's, < 0 neither
    ],
    result: "i32", // the lanes in use
  },
  pk_blake3: {
    parameters: [
      "buffer", // const void *data
      "u64", // uint64_t len
      "buffer", // void *out (32 bytes)
    ],
    result: "void",
  },
  pk_blake3_nb: {
    name: "pk_blake3",
    parameters: [
      "pointer", // const void *data
      "u64", // uint64_t len
      "pointer", // void *out (32 bytes)
    ],
    result: "void",
    nonblocking: true,
  },

  // 9. Signal report
  /** int32_t pk_report_sealed_writes(void): says why on stderr when a write into a sealed object's read-only mapping ends the process */
  pk_report_sealed_writes: { parameters: [], result: "i32" },

  // 10. HTTP/1.1 Range receiver: a response body straight into a memfd or memory, hashed as it lands
  pk_http_open: {
    parameters: [
      "buffer", // const char *ip (IPv4 or IPv6 text, NUL-terminated)
      "i32", // int32_t port
      "buffer", // uint64_t *out (the connection's struct, C memory)
    ],
    result: "i32",
  },
  pk_http_request_nb: {
    name: "pk_http_request",
    parameters: [
      "pointer", // struct pk_http *c (its request written at HTTP_LAYOUT.request)
      "u32", // uint32_t length of the request
      "i32", // int32_t timeout_ms
    ],
    result: "i32", // length of the response head, at HTTP_LAYOUT.head
    nonblocking: true,
  },
  pk_http_recv_nb: {
    name: "pk_http_recv",
    parameters: [
      "pointer", // struct pk_http *c
      "pointer", // void *dest (a mapping, or memory kept alive until the call settles)
      "u64", // uint64_t length
      "i32", // int32_t timeout_ms
      "i32", // int32_t flags: 1 starts a hash (4 with it: BLAKE3, else SHA-256), 2 writes its digest at HTTP_LAYOUT.digest
    ],
    result: "i64", // length
    nonblocking: true,
  },
  pk_http_recv_fd_nb: {
    name: "pk_http_recv_fd",
    parameters: [
      "pointer", // struct pk_http *c
      "i32", // int32_t fd (a memfd, written with pwrite)
      "i64", // int64_t offset
      "u64", // uint64_t length
      "i32", // int32_t timeout_ms
      "i32", // int32_t flags: 1 starts a hash (4 with it: BLAKE3, else SHA-256), 2 writes its digest at HTTP_LAYOUT.digest
    ],
    result: "i64", // length; on a failed write, -errno and the errno at HTTP_LAYOUT.writeError
    nonblocking: true,
  },
  /** int32_t pk_http_cancel(struct pk_http *c): ends a call under way on it (shutdown) */
  pk_http_cancel: { parameters: ["pointer"], result: "i32" },
  /** int32_t pk_http_close(struct pk_http *c): closes and frees it; no call may be under way */
  pk_http_close: { parameters: ["pointer"], result: "i32" },

  // 11. HTTP GET of sealed objects (transport/http/native_get.ts), its token
  // bucket (transport/http/native_bucket.ts) and tickets
  pk_tb_new: {
    parameters: [
      "f64", // double rate: bytes a second
      "f64", // double burst: bytes
      "f64", // double catch_up: the most bytes kept for late wake-ups
      "f64", // double bridge_ms: the longest gap after a debt whose bytes are kept
      "buffer", // uint64_t *out_handle
    ],
    result: "i32",
  },
  /** double pk_tb_reserve(struct pk_tb *b, double bytes): takes them; ms to wait */
  pk_tb_reserve: { parameters: ["pointer", "f64"], result: "f64" },
  /** void pk_tb_overslept(struct pk_tb *b, double ms): a wait ended that late */
  pk_tb_overslept: { parameters: ["pointer", "f64"], result: "void" },
  /** double pk_tb_taken(struct pk_tb *b): the bytes taken so far */
  pk_tb_taken: { parameters: ["pointer"], result: "f64" },
  /** int32_t pk_tb_free(struct pk_tb *b): no listener may use it any more */
  pk_tb_free: { parameters: ["pointer"], result: "i32" },
  pk_hg_start: {
    parameters: [
      "buffer", // const char *host (numeric, NUL-terminated)
      "i32", // int32_t port (0: a free one)
      "buffer", // const char *up_host: the Deno server's address (numeric, NUL-terminated)
      "i32", // int32_t up_port
      "buffer", // const char *token
      "u32", // uint32_t token_len (0: no token)
      "buffer", // const char *secret: sent to the Deno server in Packice-Native-Offer
      "u32", // uint32_t secret_len (0: no tickets)
      "pointer", // struct pk_tb *bucket (NULL: bodies unpaced)
      "u64", // uint64_t slice: bytes taken from the bucket at once
      "buffer", // uint64_t *out_handle
    ],
    result: "i32", // the port listened on
  },
  pk_hg_put: {
    parameters: [
      "pointer", // void *handle
      "buffer", // const char *id
      "u32", // uint32_t id_len
      "u32", // uint32_t slot: JS's number for it, as pk_hg_touched reports it
      "i32", // int32_t fd (a sealed memfd; dup'd)
      "u64", // uint64_t size
      "buffer", // const char *head: header lines, each ending in CRLF
      "u32", // uint32_t head_len
    ],
    result: "i32",
  },
  pk_hg_remove: {
    parameters: [
      "pointer", // void *handle
      "buffer", // const char *id
      "u32", // uint32_t id_len
    ],
    result: "i32", // 1 when it was registered
  },
  pk_hg_relay_put: {
    parameters: [
      "pointer", // void *handle
      "buffer", // const char *id
      "u32", // uint32_t id_len
      "i32", // int32_t fd (the memfd the object lands in; reopened read-only)
      "u64", // uint64_t size
      "u64", // uint64_t piece_size
      "u32", // uint32_t max_uploads: answered here below this many bodies under way (0: no limit)
      "buffer", // const char *head: header lines, each ending in CRLF
      "u32", // uint32_t head_len
      "buffer", // const char *refusal: the JSON body of the 503 to a range not verified yet
      "u32", // uint32_t refusal_len (0: the Deno server answers those)
      "buffer", // uint64_t *out_relay
    ],
    result: "i32",
  },
  pk_hg_relay_verified: {
    parameters: [
      "pointer", // void *relay
      "u32", // uint32_t piece
    ],
    result: "i32",
  },
  pk_hg_relay_end: {
    parameters: [
      "pointer", // void *handle
      "pointer", // void *relay
    ],
    result: "i32",
  },
  pk_hg_touched: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint32_t *out: slots of the objects served since the last call
      "i32", // int32_t max
    ],
    result: "i32", // how many
  },
  pk_hg_ticket: {
    parameters: [
      "pointer", // void *handle
      "i32", // int32_t fd (a memfd; dup'd)
      "u64", // uint64_t size: the object's
      "u64", // uint64_t start
      "u64", // uint64_t end (exclusive)
      "i32", // int32_t partial: 1 206 with Content-Range, 2 its total `*`, 0 200
      "buffer", // const char *head: header lines, each ending in CRLF
      "u32", // uint32_t head_len
      "buffer", // uint64_t *out_ticket
    ],
    result: "i32",
  },
  pk_hg_cancel: {
    parameters: [
      "pointer", // void *handle
      "u64", // uint64_t ticket
    ],
    result: "i32", // 1 when taken back before any connection claimed it
  },
  pk_hg_done: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint64_t *out: tickets done since the last call
      "i32", // int32_t max
    ],
    result: "i32", // how many
  },
  pk_hg_wait_done: {
    parameters: [
      "pointer", // void *handle
      "i32", // int32_t timeout_ms
    ],
    result: "i32", // 1 when woken, 0 on the timeout
    nonblocking: true,
  },
  /** int32_t pk_hg_wake_done(void *handle): wakes a pk_hg_wait_done under way */
  pk_hg_wake_done: { parameters: ["pointer"], result: "i32" },
  pk_hg_counts: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint64_t out[5]: answered, handed over, body bytes, relay ranges answered, under way
    ],
    result: "i32",
  },
  pk_hg_close: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32",
  },

  // 12. Unix-socket fast path: gets of sealed objects answered in C
  pk_fp_create: {
    parameters: [
      "buffer", // uint64_t *out_handle
    ],
    result: "i32",
  },
  pk_fp_put: {
    parameters: [
      "pointer", // void *handle
      "buffer", // const uint8_t *id
      "u32", // uint32_t id_len
      "i32", // int32_t fd (a sealed memfd; dup'd)
      "u64", // uint64_t size
      "buffer", // const uint8_t *info: ObjectInfo JSON
      "u32", // uint32_t info_len
      "f64", // double expires_at: epoch ms, 0 for none
      "buffer", // uint32_t *out_slot: the table's number for it, as events name it
    ],
    result: "i32", // the serial's low 31 bits; -EEXIST when taken, -E2BIG when the info is too long
  },
  pk_fp_remove: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t slot
    ],
    result: "i32", // 1 when freed at once, 0 when a drain reports it freed
  },
  pk_fp_drain: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint32_t *out: (slot, change in readers (int32), reads, flags) per event
      "i32", // int32_t max events
    ],
    result: "i32", // how many events
  },
  pk_fp_close: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32",
  },
  pk_fp_conn_open: {
    parameters: [
      "pointer", // void *handle
      "i32", // int32_t fd: the connection's socket
      "buffer", // uint64_t *out_conn
    ],
    result: "i32",
  },
  pk_fp_conn_close: {
    parameters: [
      "pointer", // void *conn
    ],
    result: "i32",
  },
  pk_fp_release: {
    parameters: [
      "pointer", // void *conn
      "buffer", // const uint8_t *lease id
      "u32", // uint32_t len
      "f64", // double now: epoch ms
    ],
    result: "i32", // 0; -ENOENT unknown; -ETIMEDOUT expired
  },
  pk_fp_holds: {
    parameters: [
      "pointer", // void *conn
      "buffer", // const uint8_t *lease id
      "u32", // uint32_t len
      "f64", // double now: epoch ms
    ],
    result: "i32", // 0 holds; -ENOENT unknown; -ETIMEDOUT expired (ended)
  },
  pk_fp_renew: {
    parameters: [
      "pointer", // void *conn
      "buffer", // const uint8_t *lease id
      "u32", // uint32_t len
      "f64", // double ttl: ms; 0 for the lease's own
      "f64", // double now: epoch ms
      "buffer", // uint8_t *out_id: the object's id
      "u32", // uint32_t cap
      "buffer", // double *out_ttl
    ],
    result: "i32", // the object id's length; -ENOENT unknown; -ETIMEDOUT expired; -EINVAL no TTL
  },
  pk_fp_expire: {
    parameters: [
      "pointer", // void *handle
      "f64", // double now: epoch ms
    ],
    result: "i32", // leases ended
  },
  pk_fp_recv: {
    parameters: [
      "pointer", // void *conn
      "buffer", // uint8_t *buf
      "u64", // uint64_t cap
      "buffer", // int32_t *fds_out
      "u32", // uint32_t max_fds
      "buffer", // int32_t *out_nfds
      "buffer", // int32_t *out_flags
      "f64", // double now: epoch ms
      "buffer", // uint8_t *spill (64 KiB at least)
      "buffer", // int32_t *spill_fds (253)
      "buffer", // double out[14]
    ],
    result: "i64", // as pk_recvmsg; -errno when replies could not be kept
  },
  pk_fp_recv_each: {
    parameters: [
      "buffer", // const uint64_t *conns
      "i32", // int32_t count
      "buffer", // uint8_t *buf
      "u64", // uint64_t cap
      "buffer", // int32_t *fds_out
      "u32", // uint32_t max_fds
      "buffer", // int32_t *out_nfds
      "buffer", // int32_t *out_flags
      "f64", // double now: epoch ms
      "buffer", // uint8_t *spill (64 KiB at least)
      "buffer", // int32_t *spill_fds (253)
      "buffer", // double out[17]
    ],
    result: "i32", // connections gone through
  },

  // 13. Unix-socket small puts answered in C, into the table of section 12
  pk_fp_budget: {
    parameters: [
      "pointer", // void *handle
      "f64", // double bytes: what new objects put in C may take
      "u32", // uint32_t max_memfds: made in C for OPENs of them
      "i32", // int32_t deletes: 1 when DELETEs of them are answered in C
    ],
    result: "i32",
  },
  pk_fp_take_deletes: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint32_t *out: slots of objects put and deleted in C
      "i32", // int32_t max
    ],
    result: "i32", // how many
  },
  pk_fp_take_puts: {
    parameters: [
      "pointer", // void *handle
      "buffer", // uint8_t *out: 56 bytes per object (slot u32, size u32, created f64, id 36, serial u32)
      "i32", // int32_t max
    ],
    result: "i32", // how many
  },
  pk_fp_slot_of: {
    parameters: [
      "pointer", // void *handle
      "buffer", // const uint8_t *id
      "u32", // uint32_t len
    ],
    result: "i32", // the slot of the object put in C with that id that JS holds; -ENOENT
  },
  pk_fp_copy: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t slot
      "u64", // uint64_t offset
      "buffer", // uint8_t *out
      "u64", // uint64_t len
    ],
    result: "i32", // 0; -ENOENT not held; -ERANGE outside the object
  },
  pk_fp_memfd: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t slot
    ],
    result: "i32", // a new descriptor of its sealed memfd; -errno
  },
  pk_fp_trim: {
    parameters: [
      "pointer", // void *handle
    ],
    result: "i32", // regions given back: only once no object put in C is left
  },
  pk_fp_put_memory: {
    parameters: [
      "pointer", // void *handle
      "buffer", // double out[5]: region, spare and chunk bytes; regions faulted in ahead, on the receive
    ],
    result: "i32", // 0
  },
  pk_fp_unhold: {
    parameters: [
      "pointer", // void *handle
      "u32", // uint32_t slot
    ],
    result: "i32", // 1 freed at once, 0 later (a drain tells), -ENOENT not held
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The functions of a loaded `libpackice.so`. */
export type NativeSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/**
 * Where the buffers of an HTTP connection's struct (`struct pk_http`) sit,
 * and how long they are.
 */
export const HTTP_LAYOUT = {
  /** int32_t: body bytes read with the head, not yet taken by `pk_http_recv`. */
  pending: 8,
  /** int32_t: the errno of the write that ended the last `pk_http_recv_fd`, or 0. */
  writeError: 12,
  /** The digest (SHA-256 or BLAKE3) `pk_http_recv` writes with flag 2, 32 bytes. */
  digest: 16,
  /** The request `pk_http_request` sends. */
  request: 48,
  requestMax: 4096,
  /** The response head `pk_http_request` reads. */
  head: 48 + 4096,
  headMax: 8192,
} as const;

/** Linux constants used with the native functions. */
export const Linux = {
  MFD_ALLOW_SEALING: 0x2,
  F_SEAL_SEAL: 0x1,
  F_SEAL_SHRINK: 0x2,
  F_SEAL_GROW: 0x4,
  F_SEAL_WRITE: 0x8,
  F_SEAL_FUTURE_WRITE: 0x10,
  TMPFS_MAGIC: 0x01021994,
  O_WRONLY: 0o1,
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_TRUNC: 0o1000,
  MSG_TRUNC: 0x20,
  MSG_CTRUNC: 0x8,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  EPOLLIN: 0x1,
  EPOLLOUT: 0x4,
  EPOLLERR: 0x8,
  EPOLLHUP: 0x10,
  EPOLLRDHUP: 0x2000,
} as const;
