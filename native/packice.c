// Packice native library (libpackice.so), loaded by native/load.ts through the
// symbol table in native/ffi.ts, whose order this file follows.
//
// Linux only. Every function returns >= 0 on success and -errno on failure,
// so a call made on another thread (Deno's `nonblocking: true`) needs no
// thread-local errno. Pointer results go through out-parameters.
//
// Build (native/build.ts): cc -O2 -shared -fPIC -Wall -Wextra -o libpackice.so packice.c
//
// One file, as the library is built on demand from its source alone (an
// import by URL fetches just this file); the contents below keep it readable.
//
// Contents
//   1. Library: ABI version and pinning
//   2. Shared helpers: chunked mapping, eventfd
//   3. memfd and seals, and the memfd pool's calls
//   4. Mappings and copies into and out of them
//   5. Files: I/O from and to memory, and the background I/O queue of the disk tier
//   6. Unix sockets and SCM_RIGHTS
//   7. epoll, eventfd and the reactor
//   8. Hashing: XXH64, SHA-256 and BLAKE3
//   9. Signal report: a write into a sealed object
//  10. HTTP/1.1 Range receiver: a response body straight into a memfd or memory, hashed as it lands
//  11. HTTP GET of sealed objects: a listener serving their memfds, and the bodies the Deno
//      server hands it (tickets), paced by a token bucket shared with JS
//  12. Unix-socket fast path: gets of sealed objects answered in C
//  13. Unix-socket small puts answered in C, into the table of section 12

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#define PK_EXPORT __attribute__((visibility("default")))

// Bumped whenever a signature or behaviour changes; native/load.ts refuses a
// library whose version differs from the one it was written for.
#define PK_ABI_VERSION 26

// The most fds one message may carry (the kernel's SCM_MAX_FD).
#define PK_MAX_FDS 253
// The most events one pk_epoll_wait call reports.
#define PK_EPOLL_MAX 1024
// Chunk of the buffered fallback of pk_copy_file_range_all.
#define PK_COPY_CHUNK (1 << 20)
// Chunk of populating and unmapping: each step holds the address-space lock
// briefly, and the thread yields between steps, so other threads (the JS
// thread changing page protections for its JIT, say) are not stalled for as
// long as a whole large range takes.
#define PK_MAP_CHUNK ((uint64_t)2 << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

// ===========================================================================
// 1. Library: ABI version and pinning
// ===========================================================================

PK_EXPORT int32_t pk_version(void) { return PK_ABI_VERSION; }

// Pins this library in memory for the life of the process; native/load.ts
// calls it once a library passes its version check. Calls made with Deno's
// `nonblocking: true` run on its blocking thread pool, and nothing waits for
// them when the process exits: Deno closes the library (dlclose) while
// tearing the runtime down, and a thread still inside, say,
// pk_memfd_prepare_many then ran unmapped code and the process died with
// SIGSEGV instead of its exit code. Reopened with RTLD_NODELETE, the library
// stays mapped through every dlclose. The reactor and I/O threads pin it too,
// so that they never return into unmapped code.
PK_EXPORT int32_t pk_pin(void) {
  Dl_info self;
  if (dladdr((void *)pk_pin, &self) == 0 || self.dli_fname == NULL) return -ENOENT;
  return dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == NULL ? -ENOENT : 0;
}

// ===========================================================================
// 2. Shared helpers: chunked mapping, eventfd
// ===========================================================================

static int32_t unmap_chunked(void *ptr, uint64_t len) {
  char *p = ptr;
  for (uint64_t off = 0; off < len; off += PK_MAP_CHUNK) {
    uint64_t n = len - off < PK_MAP_CHUNK ? len - off : PK_MAP_CHUNK;
    if (off > 0) sched_yield();
    if (munmap(p + off, n) < 0) return -errno;
  }
  return 0;
}

// Maps `fd` read-write and shared, with every page faulted in, chunk by chunk.
// Kernels before 5.14 lack MADV_POPULATE_WRITE: there, one MAP_POPULATE.
static void *map_populated(int fd, uint64_t len) {
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return MAP_FAILED;
  for (uint64_t off = 0; off < len; off += PK_MAP_CHUNK) {
    uint64_t n = len - off < PK_MAP_CHUNK ? len - off : PK_MAP_CHUNK;
    if (off > 0) sched_yield();
    if (madvise(p + off, n, MADV_POPULATE_WRITE) == 0) continue;
    int error = errno;
    unmap_chunked(p, len);
    if (error != EINVAL || off > 0) {
      errno = error;
      return MAP_FAILED;
    }
    return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  }
  return p;
}

// Makes the eventfd readable. A full counter already is, so EAGAIN is success.
static int32_t eventfd_signal(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do n = write(fd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  return n < 0 && errno != EAGAIN ? -errno : 0;
}

// Resets the eventfd. Returns 1 when it was signalled, 0 when it was not.
static int32_t eventfd_drain(int fd) {
  uint64_t count;
  ssize_t n;
  do n = read(fd, &count, sizeof count);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN ? 0 : -errno;
  return 1;
}

// ===========================================================================
// 3. memfd and seals, and the memfd pool's calls
// ===========================================================================

PK_EXPORT int32_t pk_memfd_create(const char *name, uint32_t flags) {
  int fd = memfd_create(name, flags | MFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

PK_EXPORT int32_t pk_ftruncate(int32_t fd, int64_t size) {
  return ftruncate(fd, size) < 0 ? -errno : 0;
}

PK_EXPORT int64_t pk_fstat_size(int32_t fd) {
  struct stat st;
  return fstat(fd, &st) < 0 ? -errno : (int64_t)st.st_size;
}

// The type of the file system `fd` lives on (statfs f_type, such as TMPFS_MAGIC).
PK_EXPORT int64_t pk_fstatfs_type(int32_t fd) {
  struct statfs st;
  return fstatfs(fd, &st) < 0 ? -errno : (int64_t)st.f_type;
}

// Bytes the file system holding `path` can still give this user (statfs f_bavail).
PK_EXPORT int64_t pk_statfs_room(const char *path) {
  struct statfs st;
  return statfs(path, &st) < 0 ? -errno : (int64_t)st.f_bavail * (int64_t)st.f_bsize;
}

PK_EXPORT int32_t pk_add_seals(int32_t fd, int32_t seals) {
  return fcntl(fd, F_ADD_SEALS, seals) < 0 ? -errno : 0;
}

PK_EXPORT int32_t pk_get_seals(int32_t fd) {
  int seals = fcntl(fd, F_GET_SEALS);
  return seals < 0 ? -errno : seals;
}

PK_EXPORT int32_t pk_close(int32_t fd) {
  // After EINTR the fd is already released on Linux: never retry close.
  return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

PK_EXPORT int32_t pk_dup(int32_t fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return copy < 0 ? -errno : copy;
}

// Writes the device and inode numbers of an open file into out[0..1]: two
// descriptors of one live memfd give the same pair, so a process can tell
// that a memfd it receives is one it has mapped already.
PK_EXPORT int32_t pk_fd_identity(int32_t fd, uint64_t *out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  out[0] = (uint64_t)st.st_dev;
  out[1] = (uint64_t)st.st_ino;
  return 0;
}

static int32_t prepare_one(uint64_t size, int32_t populate, int32_t *out_fd, uint64_t *out_ptr) {
  int fd = memfd_create("packice", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  void *ptr = NULL;
  if (ftruncate(fd, (off_t)size) < 0) goto fail;
  if (size > 0 && populate && fallocate(fd, 0, 0, (off_t)size) < 0) goto fail;
  if (size > 0 && out_ptr != NULL) {
    ptr = populate ? map_populated(fd, size)
                   : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ptr == MAP_FAILED) goto fail;
  }
  *out_fd = fd;
  if (out_ptr != NULL) *out_ptr = (uint64_t)(uintptr_t)ptr;
  return 0;
fail:;
  int error = errno;
  close(fd);
  return -error;
}

// memfd_create + ftruncate + (fallocate) + mmap read-write shared (+ populate).
// A size of 0 gives an fd and a null pointer; a null `out_ptr` skips the mmap.
PK_EXPORT int32_t pk_memfd_prepare(uint64_t size, int32_t populate, int32_t *out_fd,
                                   uint64_t *out_ptr) {
  return prepare_one(size, populate, out_fd, out_ptr);
}

// A new descriptor of the file `fd` is open on, opened read-only: a mapping
// made through it can never be made writable, so it does not keep
// F_SEAL_WRITE out of a memfd (on kernels before 6.7, a read-only shared
// mapping through a read-write descriptor does).
PK_EXPORT int32_t pk_reopen_readonly(int32_t fd) {
  char path[32];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int copy = open(path, O_RDONLY | O_CLOEXEC);
  return copy < 0 ? -errno : copy;
}

// Zeroed memory for the out-parameters of a call made on another thread, or
// null. Deno does not keep a typed array alive for a `nonblocking` call, and
// nothing waits for such calls when the process exits: results stored into
// memory this library owns cannot land in a freed JS heap. The caller frees
// it with pk_free once it has seen the call finish.
PK_EXPORT void *pk_alloc(uint64_t size) { return calloc(1, size); }

PK_EXPORT void pk_free(void *ptr) { free(ptr); }

// pk_memfd_prepare `count` times, for a pool filled on another thread that the
// JS thread reads while the call runs (the out-parameters are pk_alloc
// memory): each out_fds[i] is stored (with release order) after its memfd and
// out_ptrs[i] are ready, and *out_done last of all, with what the call
// returns: how many were prepared, or -errno when not even the first one
// could be. A null `out_ptrs` prepares unmapped memfds.
PK_EXPORT int32_t pk_memfd_prepare_many(uint32_t count, uint64_t size, int32_t populate,
                                        int32_t *out_fds, uint64_t *out_ptrs,
                                        int32_t *out_done) {
  uint32_t done = 0;
  int32_t result = 0;
  for (; done < count; done++) {
    int32_t fd = -1;
    uint64_t ptr = 0;
    result = prepare_one(size, populate, &fd, out_ptrs == NULL ? NULL : &ptr);
    if (result < 0) break;
    if (out_ptrs != NULL) out_ptrs[done] = ptr;
    __atomic_store_n(&out_fds[done], fd, __ATOMIC_RELEASE);
  }
  if (done > 0 || result >= 0) result = (int32_t)done;
  __atomic_store_n(out_done, result, __ATOMIC_RELEASE);
  return result;
}

// Closes `count` descriptors, for freeing on another thread; returns the first
// error, after trying every one.
PK_EXPORT int32_t pk_close_many(const int32_t *fds, uint32_t count) {
  int32_t result = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (close(fds[i]) < 0 && errno != EINTR && result == 0) result = -errno;
  }
  return result;
}

// munmap (when `ptr` is not null) then F_ADD_SEALS: seals a memfd against
// writes once this process's writable mapping of it is gone.
PK_EXPORT int32_t pk_unmap_seal(int32_t fd, void *ptr, uint64_t len, int32_t seals) {
  if (ptr != NULL) {
    int32_t result = unmap_chunked(ptr, len);
    if (result < 0) return result;
  }
  return fcntl(fd, F_ADD_SEALS, seals) < 0 ? -errno : 0;
}

// munmap (when `ptr` is not null) then close: frees a memfd, whose pages go
// back to the kernel when the last descriptor and mapping are gone.
PK_EXPORT int32_t pk_unmap_close(int32_t fd, void *ptr, uint64_t len) {
  int32_t result = ptr != NULL ? unmap_chunked(ptr, len) : 0;
  if (close(fd) < 0 && errno != EINTR && result == 0) result = -errno;
  return result;
}

static int32_t recycle(int32_t fd, char *p, uint64_t size, uint64_t capacity) {
  if (ftruncate(fd, (off_t)capacity) < 0) return -errno;
  if (fallocate(fd, 0, (off_t)size, (off_t)(capacity - size)) < 0) return -errno;
  uint64_t start = size & ~(uint64_t)4095;
  for (uint64_t off = start; off < capacity; off += PK_MAP_CHUNK) {
    uint64_t n = capacity - off < PK_MAP_CHUNK ? capacity - off : PK_MAP_CHUNK;
    if (off > start) sched_yield();
    if (madvise(p + off, n, MADV_POPULATE_WRITE) < 0 && errno != EINVAL) return -errno;
  }
  return 0;
}

// Readies the memfd of a freed object, which no other process ever received,
// for a new one: its size back to `capacity` (the object had cut it to
// `size`) with every page allocated and mapped read-write. The first `size`
// bytes keep the old object's data: the new one must overwrite or zero them
// before anyone reads them. For a pool read while the call runs, like
// pk_memfd_prepare_many: *out_fd gets the fd (with release order) when it is
// ready, and *out_done last, 1 or -errno. On failure the memfd is unmapped
// and closed.
PK_EXPORT int32_t pk_recycle(int32_t fd, void *ptr, uint64_t size, uint64_t capacity,
                             int32_t *out_fd, int32_t *out_done) {
  int32_t result = recycle(fd, ptr, size, capacity);
  if (result < 0) {
    unmap_chunked(ptr, capacity);
    close(fd);
  } else {
    __atomic_store_n(out_fd, fd, __ATOMIC_RELEASE);
  }
  __atomic_store_n(out_done, result < 0 ? result : 1, __ATOMIC_RELEASE);
  return result;
}

// ===========================================================================
// 4. Mappings and copies into and out of them
// ===========================================================================

PK_EXPORT int32_t pk_mmap(int32_t fd, uint64_t len, int64_t offset, int32_t writable,
                          int32_t populate, uint64_t *out_ptr) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void *ptr = mmap(NULL, len, prot, flags, fd, offset);
  if (ptr == MAP_FAILED) return -errno;
  *out_ptr = (uint64_t)(uintptr_t)ptr;
  return 0;
}

PK_EXPORT int32_t pk_munmap(void *ptr, uint64_t len) { return unmap_chunked(ptr, len); }

// One munmap of the whole range. pk_munmap unmaps in chunks and yields
// between them, which is slow for a large sparse mapping (a read-only
// mapping with a few pages touched); this is for mappings whose pages are
// mostly untouched, or that are unmapped off the JS thread.
PK_EXPORT int32_t pk_munmap_once(void *ptr, uint64_t len) {
  return munmap(ptr, len) < 0 ? -errno : 0;
}

// Copies between JS memory and a mapping, and zeroes mapped memory, without
// a JS view of the mapping: each view of a large mapping counts as external
// memory that drives V8's garbage collector.
PK_EXPORT void pk_copy_in(void *dst, const void *src, uint64_t len) { memcpy(dst, src, len); }

PK_EXPORT void pk_copy_out(void *dst, const void *src, uint64_t len) { memcpy(dst, src, len); }

PK_EXPORT void pk_zero(void *dst, uint64_t len) { memset(dst, 0, len); }

// ===========================================================================
// 5. Files: I/O from and to memory, and the background I/O queue
// of the disk tier
// ===========================================================================

// I/O straight from and to memory. Each returns the bytes moved, which is
// less than `len` only at end of file.

PK_EXPORT int64_t pk_pwrite_all(int32_t fd, const void *ptr, uint64_t len, int64_t off) {
  const char *p = ptr;
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, p + done, len - done, off + (int64_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += (uint64_t)n;
  }
  return (int64_t)done;
}

PK_EXPORT int64_t pk_pread_all(int32_t fd, void *ptr, uint64_t len, int64_t off) {
  char *p = ptr;
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, p + done, len - done, off + (int64_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    done += (uint64_t)n;
  }
  return (int64_t)done;
}

static int64_t copy_buffered(int fd_in, int64_t off_in, int fd_out, int64_t off_out,
                             uint64_t len) {
  char *chunk = malloc(PK_COPY_CHUNK);
  if (chunk == NULL) return -ENOMEM;
  uint64_t done = 0;
  int64_t result = 0;
  while (done < len) {
    uint64_t want = len - done < PK_COPY_CHUNK ? len - done : PK_COPY_CHUNK;
    int64_t got = pk_pread_all(fd_in, chunk, want, off_in + (int64_t)done);
    if (got <= 0) {
      result = got;
      break;
    }
    int64_t put = pk_pwrite_all(fd_out, chunk, (uint64_t)got, off_out + (int64_t)done);
    if (put < 0) {
      result = put;
      break;
    }
    done += (uint64_t)got;
    if ((uint64_t)got < want) break;
  }
  free(chunk);
  return result < 0 ? result : (int64_t)done;
}

// copy_file_range until `len` bytes or end of file; falls back to a buffered
// copy where the kernel cannot copy between the two files (EXDEV and kin).
PK_EXPORT int64_t pk_copy_file_range_all(int32_t fd_in, int64_t off_in, int32_t fd_out,
                                         int64_t off_out, uint64_t len) {
  loff_t in = off_in, out = off_out;
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = copy_file_range(fd_in, &in, fd_out, &out, len - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      if (done == 0 && (error == EXDEV || error == EINVAL || error == EOPNOTSUPP ||
                        error == ENOSYS)) {
        return copy_buffered(fd_in, off_in, fd_out, off_out, len);
      }
      return -error;
    }
    if (n == 0) break;
    done += (uint64_t)n;
  }
  return (int64_t)done;
}

PK_EXPORT int32_t pk_open(const char *path, int32_t flags, uint32_t mode) {
  int fd;
  do fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

// Background file I/O for the disk tier (backends/fs/native_io.ts).
//
// Long-lived worker threads, at a low CPU priority, take jobs (create a file,
// write to it from memory, fsync it) off one queue and post each result to a
// completion list, then signal an eventfd that the JS thread watches. Copying
// bytes into the page cache costs a core's worth of kernel time under a
// stream of writes; run at normal priority, as on Deno's blocking pool, it
// keeps the JS thread waiting in the run queue whenever every core is busy.
// Submitting a job is a mutex and a condition variable, with no thread
// handed a task per call.

// Bytes one write system call moves: the kernel copies without a preemption
// point, so a thread that wakes to run the JS event loop waits at most for
// one chunk.
#define PK_IO_CHUNK ((uint64_t)256 << 10)

enum pk_io_kind { PK_IO_CREATE = 1, PK_IO_PWRITE = 2, PK_IO_FSYNC = 3 };

struct pk_io_job {
  struct pk_io_job *next;
  uint32_t id;
  int32_t kind;
  int32_t fd;
  const char *src;
  uint64_t len;
  int64_t off;
  int64_t result;
  char *path;
};

struct pk_io {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct pk_io_job *head, *tail;
  struct pk_io_job *done_head, *done_tail;
  int eventfd;
  int nice;
};

static int64_t pk_io_pwrite_chunked(int fd, const char *src, uint64_t len, int64_t off) {
  uint64_t done = 0;
  while (done < len) {
    uint64_t n = len - done < PK_IO_CHUNK ? len - done : PK_IO_CHUNK;
    int64_t wrote = pk_pwrite_all(fd, src + done, n, off + (int64_t)done);
    if (wrote < 0) return wrote;
    done += (uint64_t)wrote;
  }
  return (int64_t)done;
}

static int64_t pk_io_create(const char *path, int64_t size) {
  // Only the owner reads objects from disk, as backends/fs/modes.ts says.
  int fd = pk_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return fd;
  if (ftruncate(fd, size) < 0) {
    int error = errno;
    close(fd);
    unlink(path);
    return -error;
  }
  return fd;
}

static void pk_io_run(struct pk_io_job *job) {
  switch (job->kind) {
    case PK_IO_CREATE:
      job->result = pk_io_create(job->path, job->off);
      break;
    case PK_IO_PWRITE:
      job->result = pk_io_pwrite_chunked(job->fd, job->src, job->len, job->off);
      break;
    case PK_IO_FSYNC:
      job->result = fsync(job->fd) < 0 ? -errno : 0;
      break;
    default:
      job->result = -EINVAL;
  }
}

static void *pk_io_loop(void *arg) {
  struct pk_io *io = arg;
  // Per thread on Linux: only this worker runs at the lower priority.
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), io->nice);
  pthread_setname_np(pthread_self(), "packice-io");
  pthread_mutex_lock(&io->lock);
  for (;;) {
    while (io->head == NULL) pthread_cond_wait(&io->wake, &io->lock);
    struct pk_io_job *job = io->head;
    io->head = job->next;
    if (io->head == NULL) io->tail = NULL;
    pthread_mutex_unlock(&io->lock);
    pk_io_run(job);
    pthread_mutex_lock(&io->lock);
    job->next = NULL;
    if (io->done_tail != NULL) io->done_tail->next = job;
    else io->done_head = job;
    io->done_tail = job;
    eventfd_signal(io->eventfd);
  }
  return NULL;
}

// Starts `threads` workers at nice `nice` that live as long as the process
// (the library is pinned). Writes the handle; returns the eventfd that
// becomes readable when results wait for pk_io_reap.
PK_EXPORT int32_t pk_io_start(int32_t threads, int32_t nice, uint64_t *out_handle) {
  if (threads <= 0 || threads > 64) return -EINVAL;
  pk_pin();
  struct pk_io *io = calloc(1, sizeof *io);
  if (io == NULL) return -ENOMEM;
  io->nice = nice;
  io->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (io->eventfd < 0) {
    int error = errno;
    free(io);
    return -error;
  }
  pthread_mutex_init(&io->lock, NULL);
  pthread_cond_init(&io->wake, NULL);
  for (int32_t i = 0; i < threads; i++) {
    pthread_t thread;
    int error = pthread_create(&thread, NULL, pk_io_loop, io);
    if (error != 0 && i == 0) {
      close(io->eventfd);
      free(io);
      return -error;
    }
    // Fewer workers than asked for still run every job.
    if (error != 0) break;
    pthread_detach(thread);
  }
  *out_handle = (uint64_t)(uintptr_t)io;
  return io->eventfd;
}

static int32_t pk_io_submit(struct pk_io *io, struct pk_io_job *job) {
  pthread_mutex_lock(&io->lock);
  if (io->tail != NULL) io->tail->next = job;
  else io->head = job;
  io->tail = job;
  pthread_cond_signal(&io->wake);
  pthread_mutex_unlock(&io->lock);
  return 0;
}

static struct pk_io_job *pk_io_job_new(uint32_t id, int32_t kind) {
  struct pk_io_job *job = calloc(1, sizeof *job);
  if (job != NULL) {
    job->id = id;
    job->kind = kind;
  }
  return job;
}

// Queues the creation of a new file (O_EXCL, mode 0644) of `size` bytes;
// its result is the open fd, read-write. The path is copied.
PK_EXPORT int32_t pk_io_create_file(void *handle, uint32_t id, const char *path, int64_t size) {
  struct pk_io_job *job = pk_io_job_new(id, PK_IO_CREATE);
  if (job == NULL) return -ENOMEM;
  job->path = strdup(path);
  if (job->path == NULL) {
    free(job);
    return -ENOMEM;
  }
  job->off = size;
  return pk_io_submit(handle, job);
}

// Queues a write of `len` bytes from `src` at `off`; its result is the bytes
// written. `src` must stay valid until the result is reaped.
PK_EXPORT int32_t pk_io_pwrite(void *handle, uint32_t id, int32_t fd, const void *src,
                               uint64_t len, int64_t off) {
  struct pk_io_job *job = pk_io_job_new(id, PK_IO_PWRITE);
  if (job == NULL) return -ENOMEM;
  job->fd = fd;
  job->src = src;
  job->len = len;
  job->off = off;
  return pk_io_submit(handle, job);
}

// Queues an fsync of `fd`; its result is 0.
PK_EXPORT int32_t pk_io_fsync(void *handle, uint32_t id, int32_t fd) {
  struct pk_io_job *job = pk_io_job_new(id, PK_IO_FSYNC);
  if (job == NULL) return -ENOMEM;
  job->fd = fd;
  return pk_io_submit(handle, job);
}

// Resets the eventfd, then takes up to `max` finished jobs: their ids and
// results (>= 0, or -errno). Returns how many; call again while it returns `max`.
PK_EXPORT int32_t pk_io_reap(void *handle, uint32_t *out_ids, int64_t *out_results,
                             int32_t max) {
  struct pk_io *io = handle;
  eventfd_drain(io->eventfd);
  pthread_mutex_lock(&io->lock);
  int32_t count = 0;
  while (count < max && io->done_head != NULL) {
    struct pk_io_job *job = io->done_head;
    io->done_head = job->next;
    out_ids[count] = job->id;
    out_results[count] = job->result;
    count++;
    free(job->path);
    free(job);
  }
  if (io->done_head == NULL) io->done_tail = NULL;
  pthread_mutex_unlock(&io->lock);
  return count;
}

// ===========================================================================
// 6. Unix sockets and SCM_RIGHTS
// SOCK_SEQPACKET, non-blocking, close-on-exec.
// ===========================================================================

static int32_t unix_address(const char *path, struct sockaddr_un *addr) {
  size_t len = strlen(path);
  if (len == 0) return -EINVAL;
  if (len >= sizeof addr->sun_path) return -ENAMETOOLONG;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, len);
  return 0;
}

// socket + bind + listen; the caller unlinks a stale path first and chmods after.
PK_EXPORT int32_t pk_uds_listen(const char *path, int32_t backlog) {
  struct sockaddr_un addr;
  int32_t bad = unix_address(path, &addr);
  if (bad < 0) return bad;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, backlog) < 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

// A non-blocking connect: -EAGAIN when the server's backlog is full.
PK_EXPORT int32_t pk_uds_connect(const char *path) {
  struct sockaddr_un addr;
  int32_t bad = unix_address(path, &addr);
  if (bad < 0) return bad;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int result;
  do result = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (result < 0 && errno == EINTR);
  if (result < 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

// -EAGAIN when no connection is waiting. The new socket is non-blocking.
PK_EXPORT int32_t pk_accept(int32_t lfd) {
  int fd;
  do fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

// Sends one message, with `nfds` descriptors attached (SCM_RIGHTS) when > 0.
// Returns the bytes sent; -EAGAIN when the socket buffer is full.
PK_EXPORT int64_t pk_sendmsg(int32_t fd, const void *buf, uint64_t len, const int32_t *fds,
                             uint32_t nfds) {
  if (nfds > PK_MAX_FDS) return -EINVAL;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  union {
    char bytes[CMSG_SPACE(sizeof(int) * PK_MAX_FDS)];
    struct cmsghdr align;
  } control;
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int64_t)n;
}

// Receives one message into `buf` and up to `max_fds` descriptors into
// `fds_out` (close-on-exec); descriptors beyond `max_fds` are closed.
// `out_flags` gets MSG_TRUNC when the message was longer than `cap` and
// MSG_CTRUNC when descriptors were dropped. Returns the bytes received
// (0 when the peer has closed); -EAGAIN when nothing is waiting.
PK_EXPORT int64_t pk_recvmsg(int32_t fd, void *buf, uint64_t cap, int32_t *fds_out,
                             uint32_t max_fds, int32_t *out_nfds, int32_t *out_flags) {
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  union {
    char bytes[CMSG_SPACE(sizeof(int) * PK_MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {
      .msg_iov = &iov,
      .msg_iovlen = 1,
      .msg_control = control.bytes,
      .msg_controllen = sizeof control.bytes,
  };
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  uint32_t got = 0;
  int32_t flags = msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC);
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received;
      memcpy(&received, CMSG_DATA(cmsg) + i * sizeof(int), sizeof received);
      if (got < max_fds) {
        fds_out[got++] = received;
      } else {
        close(received);
        flags |= MSG_CTRUNC;
      }
    }
  }
  *out_nfds = (int32_t)got;
  *out_flags = flags;
  return (int64_t)n;
}

// Raises this process's soft limit of open files to its hard limit, as a
// server that holds a memfd per object and a socket per client needs.
// Returns the new soft limit (capped at INT32_MAX).
PK_EXPORT int64_t pk_raise_nofile_limit(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
  }
  return limit.rlim_cur > INT32_MAX ? INT32_MAX : (int64_t)limit.rlim_cur;
}

// ===========================================================================
// 7. epoll, eventfd and the reactor
// ===========================================================================

PK_EXPORT int32_t pk_epoll_create(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

PK_EXPORT int32_t pk_epoll_ctl(int32_t epfd, int32_t op, int32_t fd, uint32_t events,
                               uint64_t data) {
  struct epoll_event event = {.events = events, .data.u64 = data};
  return epoll_ctl(epfd, op, fd, &event) < 0 ? -errno : 0;
}

// Waits up to `timeout_ms` (-1: forever) and writes the data and events of at
// most `max` ready entries. Returns how many; 0 on timeout or signal.
PK_EXPORT int32_t pk_epoll_wait(int32_t epfd, uint64_t *out_data, uint32_t *out_events,
                                int32_t max, int32_t timeout_ms) {
  struct epoll_event events[PK_EPOLL_MAX];
  if (max <= 0) return -EINVAL;
  if (max > PK_EPOLL_MAX) max = PK_EPOLL_MAX;
  int n = epoll_wait(epfd, events, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    out_data[i] = events[i].data.u64;
    out_events[i] = events[i].events;
  }
  return n;
}

PK_EXPORT int32_t pk_eventfd(void) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return fd < 0 ? -errno : fd;
}

// The reactor and its lent waits, for the Unix-socket transport
// (native/reactor.ts).
//
// A reactor waits in epoll_wait for ready sockets, writes them into its slots
// and has the JS side handle them, which drains every ready socket before the
// next wait, so each wait reports only new events. In one of two ways:
//
// - With a thread (the main runtime, a test module's): the thread waits and
//   calls `ready`, a Deno.UnsafeCallback.threadSafe that Deno runs on the JS
//   thread; the call blocks the thread until the JS side returns. No call is
//   parked on Deno's blocking pool per wait.
// - Without (a Worker's): the JS side keeps one call of pk_reactor_wait
//   running on Deno's blocking pool (`nonblocking: true`), which returns the
//   number of ready entries. Each hop is a task on the pool, dearer than a
//   callback under load, but nothing calls into the runtime: Deno frees a
//   runtime's callbacks when it ends, and tells a Worker's nothing before (no
//   `unload` event on terminate() or close()), so a thread calling one then
//   ended the process (SIGSEGV, or an abort). A wait's result is only received, and
//   dropped by a runtime that has gone.
//
// A Worker's end is seen through a pipe instead (pk_reactor_tie): the runtime
// holds the only reader, reopened through /proc/self/fd as one of its own
// resources, which Deno closes when it tears the runtime down (terminate()
// or close(), a pending wait or not); the process's death watch, one thread,
// waits on the write ends and sees EPOLLERR once no reader is left. It then
// closes the sockets that runtime registered (pk_reactor_add), so that their
// peers, a daemon holding their leases, see them end, and drops the
// runtime's reference to the reactor. Nothing calls into the runtime. Waits
// announced (pk_reactor_will_wait) hold references too, so a wait the
// blocking pool runs after the runtime has gone still finds the reactor; the
// last reference frees it.
//
// The handshake with a runtime that ends (the test runner's modules, told
// with `unload`): pk_reactor_abandon, under the reactor's lock, marks it
// abandoned and stops it; the thread checks that mark under the same lock
// before each call, so it calls into the runtime no more, and frees the
// reactor on its way out. A call already made then is never answered (the
// runtime runs no more tasks): the thread stays blocked in it, harmlessly.
//
// Each hop into JS wakes two threads, which is slow on a VM.
// So the JS thread may also wait on the sockets itself for a short while, when it has just sent a request (or a reply) and the
// answer (or the next request) is likely to come back at once: it lends the
// wait (pk_reactor_lend), the reactor's own wait parks, the JS thread waits
// with pk_reactor_poll, and pk_reactor_reclaim hands the wait back. The
// sockets live in an inner epoll that the JS thread waits on; the reactor's
// own wait is on an outer one holding the inner epoll and its eventfd, so
// waking it never wakes the JS thread's wait.
//
// A lent wait ends when a socket is ready or when the lend's budget, a
// timerfd in the inner epoll armed once per lend, runs out. Not a timeout
// per wait: on a VM, arming and cancelling a short timer reprograms the
// local APIC timer, a VM exit each, which made every wait cost more.

// The outer epoll's data for the reactor's eventfd and for the inner epoll.
#define PK_REACTOR_WAKE 0
#define PK_REACTOR_SOCKETS 1
// The inner epoll's token for the lend's timerfd; the JS side's tokens start at 1.
#define PK_REACTOR_BUDGET 0

typedef void (*pk_ready_fn)(int32_t count);

struct pk_reactor {
  int epfd;   // inner: the sockets, with the JS side's 32-bit tokens
  int outer;  // the inner epoll and wakefd, for the reactor's own wait
  int wakefd;
  int timerfd;  // in the inner epoll: the end of the lend's budget
  int max;
  pk_ready_fn ready;  // with a thread: the JS side's callback; else NULL
  pthread_t thread;
  atomic_int stop;
  pthread_mutex_t lock;
  pthread_cond_t reclaimed;
  int lent;  // guarded by lock: the JS thread waits on the sockets itself
  atomic_int spent;  // the lend's budget has run out
  int abandoned;  // guarded by lock: its runtime has gone; its thread frees it
  // Without a thread, guarded by lock: references (the runtime's until it
  // closes, abandons or ends, and one per wait announced), and the fds
  // registered, which the death watch closes for a runtime that has ended.
  int refs;
  int *fds;
  int nfds, capfds;
  int deathfd;  // the write end of its pipe (pk_reactor_tie), or -1
  // In the death watch, guarded by its lock: its id there (0: not in it), the next one.
  uint64_t watch_id;
  struct pk_reactor *watched_next;
  // For each ready entry: its 32-bit token, then its EPOLL* bits.
  uint32_t slots[2 * PK_EPOLL_MAX];
};

static void pk_reactor_wait_reclaimed(struct pk_reactor *r) {
  pthread_mutex_lock(&r->lock);
  while (r->lent && !atomic_load(&r->stop)) pthread_cond_wait(&r->reclaimed, &r->lock);
  pthread_mutex_unlock(&r->lock);
}

static int pk_reactor_lent_now(struct pk_reactor *r) {
  pthread_mutex_lock(&r->lock);
  int lent = r->lent;
  pthread_mutex_unlock(&r->lock);
  return lent;
}

// Waits up to `timeout_ms` (-1: no limit) on the inner epoll and writes what
// is ready into `slots`; returns the count. Consumes the budget's timerfd,
// noting in `spent` that it ran out.
static int pk_reactor_take(struct pk_reactor *r, uint32_t *slots, int max, int timeout_ms) {
  struct epoll_event events[PK_EPOLL_MAX];
  int n = epoll_wait(r->epfd, events, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int count = 0;
  for (int i = 0; i < n; i++) {
    if (events[i].data.u64 == PK_REACTOR_BUDGET) {
      uint64_t expirations;
      if (read(r->timerfd, &expirations, sizeof expirations) == sizeof expirations) {
        atomic_store(&r->spent, 1);
      }
      continue;
    }
    slots[2 * count] = (uint32_t)events[i].data.u64;
    slots[2 * count + 1] = events[i].events;
    count++;
  }
  return count;
}

// Frees a reactor, out of the death watch (or never in it).
static void pk_reactor_free(struct pk_reactor *r) {
  if (r->epfd >= 0) close(r->epfd);
  if (r->outer >= 0) close(r->outer);
  if (r->wakefd >= 0) close(r->wakefd);
  if (r->timerfd >= 0) close(r->timerfd);
  if (r->deathfd >= 0) close(r->deathfd);
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->reclaimed);
  free(r->fds);
  free(r);
}

// Drops a reference to a reactor without a thread; the last frees it.
static void pk_reactor_unref(struct pk_reactor *r) {
  pthread_mutex_lock(&r->lock);
  int last = --r->refs == 0;
  pthread_mutex_unlock(&r->lock);
  if (last) pk_reactor_free(r);
}

static void *pk_reactor_loop(void *arg);

// Creates the epolls and, with `ready`, starts the thread that waits on them
// and calls it; without, pk_reactor_wait waits. Writes the reactor's handle
// and the address of its slots (2 * max uint32 values, valid until the
// reactor is freed) and returns the epoll fd to add sockets to.
PK_EXPORT int32_t pk_reactor_start(pk_ready_fn ready, int32_t max, uint64_t *out_handle,
                                   uint64_t *out_slots) {
  if (max <= 0 || max > PK_EPOLL_MAX) return -EINVAL;
  struct pk_reactor *r = calloc(1, sizeof *r);
  if (r == NULL) return -ENOMEM;
  r->ready = ready;
  r->max = max;
  r->refs = 1;
  r->deathfd = -1;
  atomic_init(&r->stop, 0);
  atomic_init(&r->spent, 0);
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->reclaimed, NULL);
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->outer = epoll_create1(EPOLL_CLOEXEC);
  r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  r->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  int error = 0;
  struct epoll_event wake = {.events = EPOLLIN, .data.u64 = PK_REACTOR_WAKE};
  struct epoll_event sockets = {.events = EPOLLIN, .data.u64 = PK_REACTOR_SOCKETS};
  struct epoll_event budget = {.events = EPOLLIN, .data.u64 = PK_REACTOR_BUDGET};
  if (r->epfd < 0 || r->outer < 0 || r->wakefd < 0 || r->timerfd < 0 ||
      epoll_ctl(r->outer, EPOLL_CTL_ADD, r->wakefd, &wake) < 0 ||
      epoll_ctl(r->outer, EPOLL_CTL_ADD, r->epfd, &sockets) < 0 ||
      epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->timerfd, &budget) < 0) {
    error = errno;
  } else if (ready != NULL) {
    pk_pin();
    error = pthread_create(&r->thread, NULL, pk_reactor_loop, r);
  }
  if (error != 0) {
    pk_reactor_free(r);
    return -error;
  }
  *out_handle = (uint64_t)(uintptr_t)r;
  *out_slots = (uint64_t)(uintptr_t)r->slots;
  return r->epfd;
}

// Watches `fd` for `events` with the JS side's `token`; a reactor without a
// thread remembers it until pk_reactor_remove.
PK_EXPORT int32_t pk_reactor_add(void *handle, int32_t fd, uint32_t events, uint32_t token) {
  struct pk_reactor *r = handle;
  struct epoll_event event = {.events = events, .data.u64 = token};
  if (r->ready != NULL) return epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &event) < 0 ? -errno : 0;
  pthread_mutex_lock(&r->lock);
  int32_t result = 0;
  if (r->nfds == r->capfds) {
    int cap = r->capfds == 0 ? 16 : 2 * r->capfds;
    int *fds = realloc(r->fds, (size_t)cap * sizeof *fds);
    if (fds == NULL) {
      result = -ENOMEM;
    } else {
      r->fds = fds;
      r->capfds = cap;
    }
  }
  if (result == 0 && epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &event) < 0) result = -errno;
  if (result == 0) r->fds[r->nfds++] = fd;
  pthread_mutex_unlock(&r->lock);
  return result;
}

// Stops watching `fd`, which the caller closes next.
PK_EXPORT int32_t pk_reactor_remove(void *handle, int32_t fd) {
  struct pk_reactor *r = handle;
  int32_t result = epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
  if (r->ready == NULL) {
    pthread_mutex_lock(&r->lock);
    for (int i = r->nfds - 1; i >= 0; i--) {
      if (r->fds[i] != fd) continue;
      r->fds[i] = r->fds[--r->nfds];
      break;
    }
    pthread_mutex_unlock(&r->lock);
  }
  return result;
}

// Until the reactor is stopped, waits for ready sockets while the wait is
// not lent, and writes them into the reactor's slots: returns how many
// (> 0), -ECANCELED once stopped, or another -errno.
static int32_t pk_reactor_wait_ready(struct pk_reactor *r) {
  struct epoll_event events[2];
  for (;;) {
    pk_reactor_wait_reclaimed(r);
    if (atomic_load(&r->stop)) return -ECANCELED;
    int n = epoll_wait(r->outer, events, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int sockets = 0;
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == PK_REACTOR_WAKE) {
        uint64_t drained;
        if (read(r->wakefd, &drained, sizeof drained) < 0) { /* already drained */ }
      } else {
        sockets = 1;
      }
    }
    // Events seen while the wait is lent are the JS thread's to take: they
    // are level-triggered, so whoever waits next sees them again.
    if (!sockets || atomic_load(&r->stop) || pk_reactor_lent_now(r)) continue;
    int count = pk_reactor_take(r, r->slots, r->max, 0);
    if (count != 0) return count;
  }
}

// The thread of a reactor with a callback. It returns once stopped, for
// pk_reactor_join; abandoned, it frees the reactor itself.
static void *pk_reactor_loop(void *arg) {
  struct pk_reactor *r = arg;
  for (;;) {
    int32_t count = pk_reactor_wait_ready(r);
    pthread_mutex_lock(&r->lock);
    int abandoned = r->abandoned;
    pthread_mutex_unlock(&r->lock);
    if (abandoned) break;
    if (count == -ECANCELED) return NULL;
    r->ready(count);
    if (count < 0) return NULL;
  }
  pthread_detach(pthread_self());
  pk_reactor_free(r);
  return NULL;
}

// Announces a call of pk_reactor_wait, on the JS thread before making it: it
// holds a reference, so that a wait run after the runtime has gone finds the
// reactor.
PK_EXPORT int32_t pk_reactor_will_wait(void *handle) {
  struct pk_reactor *r = handle;
  pthread_mutex_lock(&r->lock);
  r->refs++;
  pthread_mutex_unlock(&r->lock);
  return 0;
}

// The wait of a reactor without a thread, announced with
// pk_reactor_will_wait and run on Deno's blocking pool; see
// pk_reactor_wait_ready. Drops its reference as it returns.
PK_EXPORT int32_t pk_reactor_wait(void *handle) {
  struct pk_reactor *r = handle;
  int32_t result = pk_reactor_wait_ready(r);
  pk_reactor_unref(r);
  return result;
}

static int32_t pk_reactor_wake(struct pk_reactor *r) {
  uint64_t one = 1;
  ssize_t n;
  do n = write(r->wakefd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  return n < 0 && errno != EAGAIN ? -errno : 0;
}

static int32_t pk_reactor_arm(struct pk_reactor *r, int64_t budget_ns) {
  struct itimerspec at = {.it_value = {.tv_sec = budget_ns / 1000000000,
                                       .tv_nsec = budget_ns % 1000000000}};
  atomic_store(&r->spent, 0);
  return timerfd_settime(r->timerfd, 0, &at, NULL) < 0 ? -errno : 0;
}

// Lends the wait to the calling (JS) thread for `budget_ns` (> 0): the
// reactor's own wait parks until pk_reactor_reclaim, and pk_reactor_poll returns
// 0 once the budget has run out. Lending again while lent renews the budget.
// Returns at once.
PK_EXPORT int32_t pk_reactor_lend(void *handle, int64_t budget_ns) {
  struct pk_reactor *r = handle;
  if (budget_ns <= 0) return -EINVAL;
  pthread_mutex_lock(&r->lock);
  int was_lent = r->lent;
  r->lent = 1;
  pthread_mutex_unlock(&r->lock);
  int32_t armed = pk_reactor_arm(r, budget_ns);
  if (armed < 0) return armed;
  return was_lent ? 0 : pk_reactor_wake(r);
}

// Hands the wait back to the reactor's own wait.
PK_EXPORT int32_t pk_reactor_reclaim(void *handle) {
  struct pk_reactor *r = handle;
  struct itimerspec off = {0};
  timerfd_settime(r->timerfd, 0, &off, NULL);
  pthread_mutex_lock(&r->lock);
  r->lent = 0;
  pthread_cond_signal(&r->reclaimed);
  pthread_mutex_unlock(&r->lock);
  return 0;
}

// A poll that takes longer than this lost the CPU meanwhile: one takes a small fraction of it.
#define PK_SPIN_GAP_NS 5000

static int64_t pk_elapsed_ns(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - since->tv_sec) * 1000000000LL + (now.tv_nsec - since->tv_nsec);
}

// Waits on the calling thread, which holds the lent wait, for ready sockets
// and writes at most `max` entries (token, events) into `slots`: for the
// first `spin_ns` by polling without sleeping, then asleep until a socket is
// ready or the lend's budget runs out. Waking a sleeping thread on another
// CPU costs, on a VM, more than most answers take to come.
// Stores in out[0] the time waited and in out[1] 1 when the spin lost the
// CPU (a gap between two polls): then what it found came because this thread
// let the other side run, not because it spun. Returns how many entries; 0
// once the budget has run out.
PK_EXPORT int32_t pk_reactor_poll(void *handle, uint32_t *slots, int32_t max, int64_t spin_ns,
                                  int64_t *out) {
  struct pk_reactor *r = handle;
  if (max <= 0 || max > PK_EPOLL_MAX || spin_ns < 0) return -EINVAL;
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int n = 0;
  int64_t waited = 0;
  int64_t lost = 0;
  while (spin_ns > 0 && !atomic_load(&r->spent)) {
    n = pk_reactor_take(r, slots, max, 0);
    int64_t now = pk_elapsed_ns(&start);
    if (now - waited > PK_SPIN_GAP_NS) lost = 1;
    waited = now;
    if (n != 0 || waited >= spin_ns) break;
  }
  while (n == 0 && !atomic_load(&r->spent)) n = pk_reactor_take(r, slots, max, -1);
  out[0] = pk_elapsed_ns(&start);
  out[1] = lost;
  return n;
}

// The death watch: one thread for the process, started with the first
// reactor it watches, waiting for the pipes of pk_reactor_tie to lose their
// reader. Reactors are known to it by id, not address: an event read before
// its reactor left the watch names no other reactor.
static struct {
  pthread_mutex_t lock;
  int epfd;  // -1 until the thread starts
  uint64_t next_id;
  struct pk_reactor *watched;
} pk_watch = {PTHREAD_MUTEX_INITIALIZER, -1, 1, NULL};

// Takes `r` out of the watch, if it is in it, and closes its pipe; holding
// the watch's lock.
static void pk_unwatch_locked(struct pk_reactor *r) {
  if (r->watch_id == 0) return;
  for (struct pk_reactor **at = &pk_watch.watched; *at != NULL; at = &(*at)->watched_next) {
    if (*at != r) continue;
    *at = r->watched_next;
    break;
  }
  epoll_ctl(pk_watch.epfd, EPOLL_CTL_DEL, r->deathfd, NULL);
  close(r->deathfd);
  r->deathfd = -1;
  r->watch_id = 0;
}

static void pk_unwatch(struct pk_reactor *r) {
  pthread_mutex_lock(&pk_watch.lock);
  pk_unwatch_locked(r);
  pthread_mutex_unlock(&pk_watch.lock);
}

// The runtime of `r` has ended (its reader of the pipe is gone): stops `r`,
// closes the fds it registered and drops the runtime's reference. Holding
// the watch's lock.
static void pk_reactor_bury(struct pk_reactor *r) {
  pk_unwatch_locked(r);
  atomic_store(&r->stop, 1);
  pthread_mutex_lock(&r->lock);
  for (int i = 0; i < r->nfds; i++) close(r->fds[i]);
  r->nfds = 0;
  pthread_cond_signal(&r->reclaimed);
  pk_reactor_wake(r);
  pthread_mutex_unlock(&r->lock);
  pk_reactor_unref(r);
}

static void *pk_watch_loop(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "packice-watch");
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(pk_watch.epfd, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    pthread_mutex_lock(&pk_watch.lock);
    for (int i = 0; i < n; i++) {
      for (struct pk_reactor *r = pk_watch.watched; r != NULL; r = r->watched_next) {
        if (r->watch_id != events[i].data.u64) continue;
        pk_reactor_bury(r);
        break;
      }
    }
    pthread_mutex_unlock(&pk_watch.lock);
  }
}

// Ties a reactor without a thread to the runtime using it: makes a pipe,
// keeps its write end and returns its read end, which the runtime reopens
// through /proc/self/fd as a resource of its own and hands to
// pk_reactor_watch (or closes, and the reactor is not watched).
PK_EXPORT int32_t pk_reactor_tie(void *handle) {
  struct pk_reactor *r = handle;
  if (r->ready != NULL || r->deathfd >= 0) return -EINVAL;
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) < 0) return -errno;
  r->deathfd = ends[1];
  return ends[0];
}

// Closes `reader`, the read end pk_reactor_tie returned, now that the
// runtime holds its own reader, and has the death watch wait for that one to
// go: then the reactor is buried (pk_reactor_bury).
PK_EXPORT int32_t pk_reactor_watch(void *handle, int32_t reader) {
  struct pk_reactor *r = handle;
  close(reader);
  if (r->ready != NULL || r->deathfd < 0 || r->watch_id != 0) return -EINVAL;
  pthread_mutex_lock(&pk_watch.lock);
  int error = 0;
  if (pk_watch.epfd < 0) {
    pthread_t thread;
    pthread_attr_t detached;
    pk_watch.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pk_watch.epfd < 0) error = errno;
    if (error == 0) {
      pk_pin();
      pthread_attr_init(&detached);
      pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
      error = pthread_create(&thread, &detached, pk_watch_loop, NULL);
      pthread_attr_destroy(&detached);
      if (error != 0) {
        close(pk_watch.epfd);
        pk_watch.epfd = -1;
      }
    }
  }
  // EPOLLERR, always reported: the pipe has no reader left.
  struct epoll_event gone = {.events = 0, .data.u64 = pk_watch.next_id};
  if (error == 0 && epoll_ctl(pk_watch.epfd, EPOLL_CTL_ADD, r->deathfd, &gone) < 0) error = errno;
  if (error == 0) {
    r->watch_id = pk_watch.next_id++;
    r->watched_next = pk_watch.watched;
    pk_watch.watched = r;
  }
  pthread_mutex_unlock(&pk_watch.lock);
  return -error;
}

// Stops the reactor: its thread ends, or the wait under way returns
// -ECANCELED. Returns at once; then pk_reactor_join, or pk_reactor_close once
// that wait has returned, frees it.
PK_EXPORT int32_t pk_reactor_stop(void *handle) {
  struct pk_reactor *r = handle;
  atomic_store(&r->stop, 1);
  pthread_mutex_lock(&r->lock);
  pthread_cond_signal(&r->reclaimed);
  pthread_mutex_unlock(&r->lock);
  return pk_reactor_wake(r);
}

// Waits for the stopped thread, then frees the reactor. Run it off the JS
// thread: the thread may be waiting for a callback to run.
PK_EXPORT int32_t pk_reactor_join(void *handle) {
  struct pk_reactor *r = handle;
  int error = pthread_join(r->thread, NULL);
  if (error != 0) return -error;
  pk_reactor_free(r);
  return 0;
}

// Frees a stopped reactor without a thread whose waits have all returned.
PK_EXPORT int32_t pk_reactor_close(void *handle) {
  pk_unwatch(handle);
  pk_reactor_unref(handle);
  return 0;
}

// For a runtime that is ending, with the reactor running: stops it and has it
// call into the runtime no more. Its thread frees it on its way out; without
// a thread, the last wait under way frees it when it returns, which may be
// after the runtime has gone, or this call, with none. The handle is not to
// be used again.
PK_EXPORT int32_t pk_reactor_abandon(void *handle) {
  struct pk_reactor *r = handle;
  // Read first: once the lock is released, a reactor with a thread may be freed.
  int threadless = r->ready == NULL;
  if (threadless) pk_unwatch(r);
  atomic_store(&r->stop, 1);
  pthread_mutex_lock(&r->lock);
  r->abandoned = 1;
  pthread_cond_signal(&r->reclaimed);
  // Woken under the lock: once it is released, the reactor may be freed.
  int32_t woken = pk_reactor_wake(r);
  pthread_mutex_unlock(&r->lock);
  if (threadless) pk_reactor_unref(r);
  return woken;
}

// ===========================================================================
// 8. Hashing: XXH64, SHA-256 and BLAKE3
// ===========================================================================

// XXH64 (public algorithm by Yann Collet), little-endian reads.

static const uint64_t P1 = 0x9E3779B185EBCA87ULL;
static const uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
static const uint64_t P3 = 0x165667B19E3779F9ULL;
static const uint64_t P4 = 0x85EBCA77C2B2AE63ULL;
static const uint64_t P5 = 0x27D4EB2F165667C5ULL;

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t read64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline uint32_t read32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t input) {
  acc += input * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val) {
  acc ^= xxh_round(0, val);
  return acc * P1 + P4;
}

PK_EXPORT uint64_t pk_hash64(const void *ptr, uint64_t len, uint64_t seed) {
  const uint8_t *p = ptr;
  const uint8_t *end = p + len;
  uint64_t h;
  if (len >= 32) {
    const uint8_t *limit = end - 32;
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    do {
      v1 = xxh_round(v1, read64(p));
      v2 = xxh_round(v2, read64(p + 8));
      v3 = xxh_round(v3, read64(p + 16));
      v4 = xxh_round(v4, read64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
  } else {
    h = seed + P5;
  }
  h += len;
  while (p + 8 <= end) {
    h ^= xxh_round(0, read64(p));
    h = rotl64(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= (uint64_t)read32(p) * P1;
    h = rotl64(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= (*p) * P5;
    h = rotl64(h, 11) * P1;
    p++;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

// SHA-256 (FIPS 180-4) of memory the caller owns or maps, for content digests:
// with the x86 SHA extensions where the CPU has them, in plain C otherwise.
// JS calls the `_nb` forms on Deno's thread pool, so a large object hashes
// off the JS thread and without a copy (WebCrypto copies its input).

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define PK_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_blocks_c(uint32_t h[8], const uint8_t *p, size_t blocks) {
  while (blocks--) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
      w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
             (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = PK_ROR(w[i - 15], 7) ^ PK_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = PK_ROR(w[i - 2], 17) ^ PK_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = k + (PK_ROR(e, 6) ^ PK_ROR(e, 11) ^ PK_ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                    K256[i] + w[i];
      uint32_t t2 = (PK_ROR(a, 2) ^ PK_ROR(a, 13) ^ PK_ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      k = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
    p += 64;
  }
}

#if defined(__x86_64__)

__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_blocks_ni(uint32_t h[8],
                                                                         const uint8_t *p,
                                                                         size_t blocks) {
  const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);    // CDAB
  __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B); // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                                  // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);                                       // CDGH
  while (blocks--) {
    const __m128i abef = state0, cdgh = state1;
    __m128i w[4];
    // Unrolled, the schedule's four words stay in registers: 1.75 GB/s here
    // (OpenSSL's speed) against 1.2-1.4 GB/s as a loop at -O2.
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
      if (i < 4) {
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
      } else {
        // W[i-4], W[i-3], W[i-2], W[i-1] sit at i, i+1, i+2, i+3 (mod 4).
        __m128i x = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
        x = _mm_add_epi32(x, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
        w[i & 3] = _mm_sha256msg2_epu32(x, w[(i + 3) & 3]);
      }
      __m128i m = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)&K256[4 * i]));
      state1 = _mm_sha256rnds2_epu32(state1, state0, m);
      state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(m, 0x0E));
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);
    p += 64;
  }
  tmp = _mm_shuffle_epi32(state0, 0x1B);       // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);    // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0); // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);    // ABEF
  _mm_storeu_si128((__m128i *)&h[0], state0);
  _mm_storeu_si128((__m128i *)&h[4], state1);
}

static int sha256_has_ni(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b >> 29) & 1;
}
#endif

// 1: the SHA extensions, 0: plain C; -1 until the first call looks.
static _Atomic int sha256_ni = -1;

static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t blocks) {
#if defined(__x86_64__)
  int ni = sha256_ni;
  if (ni < 0) sha256_ni = ni = sha256_has_ni();
  if (ni) {
    sha256_blocks_ni(h, p, blocks);
    return;
  }
#endif
  sha256_blocks_c(h, p, blocks);
}

// Which implementation runs: 1 for the SHA extensions. `force_c` 1 makes every
// later call use plain C (for tests of that path); 0 looks at the CPU again.
PK_EXPORT int32_t pk_sha256_accel(int32_t force_c) {
  if (force_c == 1) sha256_ni = 0;
  if (force_c == 0) sha256_ni = -1;
  uint32_t h[8] = {0};
  uint8_t block[64] = {0};
  sha256_blocks(h, block, 1);
  return sha256_ni;
}

// An incremental hash; JS keeps it in a buffer of PK_SHA256_CTX bytes.
struct pk_sha256 {
  uint32_t h[8];
  uint64_t total;
  uint8_t buf[64];
};
#define PK_SHA256_CTX ((int32_t)sizeof(struct pk_sha256))

PK_EXPORT int32_t pk_sha256_ctx_size(void) { return PK_SHA256_CTX; }

PK_EXPORT void pk_sha256_init(void *ctx) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  struct pk_sha256 *s = ctx;
  memcpy(s->h, h0, sizeof h0);
  s->total = 0;
}

PK_EXPORT void pk_sha256_update(void *ctx, const void *data, uint64_t len) {
  struct pk_sha256 *s = ctx;
  const uint8_t *p = data;
  size_t used = s->total % 64;
  s->total += len;
  if (used > 0) {
    size_t take = 64 - used < len ? 64 - used : len;
    memcpy(s->buf + used, p, take);
    p += take;
    len -= take;
    if (used + take < 64) return;
    sha256_blocks(s->h, s->buf, 1);
  }
  sha256_blocks(s->h, p, len / 64);
  memcpy(s->buf, p + (len & ~(uint64_t)63), len % 64);
}

// Writes the 32-byte digest to `out`; the context is spent.
PK_EXPORT void pk_sha256_final(void *ctx, void *out) {
  struct pk_sha256 *s = ctx;
  size_t used = s->total % 64;
  uint64_t bits = s->total * 8;
  s->buf[used++] = 0x80;
  if (used > 56) {
    memset(s->buf + used, 0, 64 - used);
    sha256_blocks(s->h, s->buf, 1);
    used = 0;
  }
  memset(s->buf + used, 0, 56 - used);
  for (int i = 0; i < 8; i++) s->buf[63 - i] = (uint8_t)(bits >> (8 * i));
  sha256_blocks(s->h, s->buf, 1);
  uint8_t *o = out;
  for (int i = 0; i < 8; i++) {
    o[4 * i] = (uint8_t)(s->h[i] >> 24);
    o[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
    o[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
    o[4 * i + 3] = (uint8_t)s->h[i];
  }
}

// The SHA-256 of `len` bytes at `data`, written to the 32 bytes at `out`.
PK_EXPORT void pk_sha256(const void *data, uint64_t len, void *out) {
  struct pk_sha256 s;
  pk_sha256_init(&s);
  pk_sha256_update(&s, data, len);
  pk_sha256_final(&s, out);
}

// BLAKE3 (the public specification by O'Connor, Aumasson, Neves and
// Wilcox-O'Hearn), 32-byte hashes only, for piece digests. The input is a
// tree: 1 KiB chunks of 16 blocks each hashed to a chaining value (CV), then
// parents of two CVs up to one root. Chunks are independent, so many hash at
// once, one per SIMD lane (AVX2: 8, AVX-512: 16), which a chain like SHA-256
// cannot do: several GB/s per core against SHA-NI's 1.8.

#define B3_CHUNK 1024
// The most chunks one subtree hashes in one go: its CVs take 8 KiB of stack.
#define B3_SUBTREE_MAX 256
enum { B3_CHUNK_START = 1, B3_CHUNK_END = 2, B3_PARENT = 4, B3_ROOT = 8 };

static const uint32_t B3_IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                  0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

static const uint8_t B3_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

// The round function, written once for any type that `+ ^ >> <<` take: a
// uint32_t word in plain C, a vector of 8 or 16 words (one per lane) in SIMD.
// `rot` rotates right (a compiler makes one instruction of B3_ROTR where
// the CPU has one: ror, and AVX-512's vprord).
#define B3_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define B3_G(v, a, b, c, d, x, y, rot)                                                             \
  do {                                                                                             \
    v[a] += v[b] + (x);                                                                            \
    v[d] = rot(v[d] ^ v[a], 16);                                                                   \
    v[c] += v[d];                                                                                  \
    v[b] = rot(v[b] ^ v[c], 12);                                                                   \
    v[a] += v[b] + (y);                                                                            \
    v[d] = rot(v[d] ^ v[a], 8);                                                                    \
    v[c] += v[d];                                                                                  \
    v[b] = rot(v[b] ^ v[c], 7);                                                                    \
  } while (0)
#define B3_ROUNDS(v, m, rot)                                                                       \
  _Pragma("GCC unroll 7") for (int r = 0; r < 7; r++) {                                            \
    const uint8_t *s = B3_SCHEDULE[r];                                                             \
    B3_G(v, 0, 4, 8, 12, m[s[0]], m[s[1]], rot);                                                   \
    B3_G(v, 1, 5, 9, 13, m[s[2]], m[s[3]], rot);                                                   \
    B3_G(v, 2, 6, 10, 14, m[s[4]], m[s[5]], rot);                                                  \
    B3_G(v, 3, 7, 11, 15, m[s[6]], m[s[7]], rot);                                                  \
    B3_G(v, 0, 5, 10, 15, m[s[8]], m[s[9]], rot);                                                  \
    B3_G(v, 1, 6, 11, 12, m[s[10]], m[s[11]], rot);                                                \
    B3_G(v, 2, 7, 8, 13, m[s[12]], m[s[13]], rot);                                                 \
    B3_G(v, 3, 4, 9, 14, m[s[14]], m[s[15]], rot);                                                 \
  }

// One compression in plain C: the first 8 words of its output, which are the
// next CV (or, with B3_ROOT, the 32-byte hash). Words are in the host's order,
// little-endian on every CPU this library builds for, as the specification's.
static void b3_compress(uint32_t cv[8], const uint8_t block[64], uint32_t block_len,
                        uint64_t counter, uint32_t flags) {
  uint32_t m[16], v[16];
  for (int i = 0; i < 16; i++) m[i] = read32(block + 4 * i);
  memcpy(v, cv, 32);
  memcpy(v + 8, B3_IV, 16);
  v[12] = (uint32_t)counter;
  v[13] = (uint32_t)(counter >> 32);
  v[14] = block_len;
  v[15] = flags;
  B3_ROUNDS(v, m, B3_ROTR);
  for (int i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

// `n` inputs of `blocks` full blocks each, `stride` bytes apart, to their
// CVs at out[32 * i]: whole chunks (counter counting up from `counter`,
// B3_CHUNK_START and B3_CHUNK_END on their first and last blocks) or
// parents (one block each, counter 0, B3_PARENT). `out` may be `in` when
// stride >= 32: every lane reads its input before any output is written
// over it.
struct b3_many {
  const uint8_t *in;
  size_t stride, blocks;
  uint64_t counter;
  int chunks;
};

// The flags of block `b` of every lane.
static uint32_t b3_flags(const struct b3_many *job, size_t b) {
  if (!job->chunks) return B3_PARENT;
  return (b == 0 ? B3_CHUNK_START : 0) | (b + 1 == job->blocks ? B3_CHUNK_END : 0);
}

static void b3_hash_one(const struct b3_many *job, size_t i, uint8_t *out) {
  uint32_t cv[8];
  memcpy(cv, B3_IV, 32);
  const uint8_t *in = job->in + i * job->stride;
  for (size_t b = 0; b < job->blocks; b++) {
    b3_compress(cv, in + 64 * b, 64, job->chunks ? job->counter + i : 0, b3_flags(job, b));
  }
  memcpy(out, cv, 32);
}

#if defined(__x86_64__)

typedef uint32_t b3x8 __attribute__((vector_size(32)));
typedef uint32_t b3x16 __attribute__((vector_size(64)));

// Transposes 8 rows of 8 words: row i word j to row j word i.
__attribute__((target("avx2"))) static void b3_transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
  }
}

// AVX2 has no rotate: by 16 and 8 bits, a byte shuffle (one instruction, not
// three) by the masks b3_rot16 and b3_rot8 of the function using it.
#define b3_rotr8(x, n)                                                                             \
  ((n) == 16  ? (b3x8)_mm256_shuffle_epi8((__m256i)(x), b3_rot16)                                 \
   : (n) == 8 ? (b3x8)_mm256_shuffle_epi8((__m256i)(x), b3_rot8)                                  \
              : B3_ROTR(x, n))

// Eight inputs of `job` from input `first`, one per lane.
__attribute__((target("avx2"))) static void b3_hash8(const struct b3_many *job, size_t first,
                                                     uint8_t *out) {
  const __m256i b3_rot16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                             2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  const __m256i b3_rot8 = _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
                                            1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
  b3x8 h[8], lo, hi;
  for (int i = 0; i < 8; i++) {
    h[i] = (b3x8){0} + B3_IV[i];
    uint64_t counter = job->chunks ? job->counter + first + (uint64_t)i : 0;
    lo[i] = (uint32_t)counter;
    hi[i] = (uint32_t)(counter >> 32);
  }
  const uint8_t *in = job->in + first * job->stride;
  for (size_t b = 0; b < job->blocks; b++) {
    __m256i m[16];
    for (int i = 0; i < 8; i++) {
      m[i] = _mm256_loadu_si256((const __m256i *)(in + i * job->stride + 64 * b));
      m[i + 8] = _mm256_loadu_si256((const __m256i *)(in + i * job->stride + 64 * b + 32));
    }
    b3_transpose8(m);
    b3_transpose8(m + 8);
    b3x8 v[16] = {h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
                  (b3x8){0} + B3_IV[0], (b3x8){0} + B3_IV[1], (b3x8){0} + B3_IV[2],
                  (b3x8){0} + B3_IV[3], lo, hi, (b3x8){0} + 64, (b3x8){0} + b3_flags(job, b)};
    b3x8 *w = (b3x8 *)m;
    B3_ROUNDS(v, w, b3_rotr8);
    for (int i = 0; i < 8; i++) h[i] = v[i] ^ v[i + 8];
  }
  b3_transpose8((__m256i *)h);
  for (int i = 0; i < 8; i++) _mm256_storeu_si256((__m256i *)(out + 32 * i), (__m256i)h[i]);
}

// Transposes 16 rows of 16 words: within each group of four rows as
// b3_transpose8 does, which leaves word 4L + k of the group's rows in 128-bit
// lane L of its vector k; then those lanes across the four groups.
__attribute__((target("avx512f"))) static void b3_transpose16(__m512i r[16]) {
  __m512i x[16];
  for (int g = 0; g < 16; g += 4) {
    __m512i t0 = _mm512_unpacklo_epi32(r[g], r[g + 1]), t1 = _mm512_unpackhi_epi32(r[g], r[g + 1]);
    __m512i t2 = _mm512_unpacklo_epi32(r[g + 2], r[g + 3]);
    __m512i t3 = _mm512_unpackhi_epi32(r[g + 2], r[g + 3]);
    x[g] = _mm512_unpacklo_epi64(t0, t2);
    x[g + 1] = _mm512_unpackhi_epi64(t0, t2);
    x[g + 2] = _mm512_unpacklo_epi64(t1, t3);
    x[g + 3] = _mm512_unpackhi_epi64(t1, t3);
  }
  for (int k = 0; k < 4; k++) {
    __m512i y0 = _mm512_shuffle_i32x4(x[k], x[4 + k], 0x44);
    __m512i y1 = _mm512_shuffle_i32x4(x[k], x[4 + k], 0xEE);
    __m512i y2 = _mm512_shuffle_i32x4(x[8 + k], x[12 + k], 0x44);
    __m512i y3 = _mm512_shuffle_i32x4(x[8 + k], x[12 + k], 0xEE);
    r[k] = _mm512_shuffle_i32x4(y0, y2, 0x88);
    r[4 + k] = _mm512_shuffle_i32x4(y0, y2, 0xDD);
    r[8 + k] = _mm512_shuffle_i32x4(y1, y3, 0x88);
    r[12 + k] = _mm512_shuffle_i32x4(y1, y3, 0xDD);
  }
}

// Sixteen inputs from `first`.
__attribute__((target("avx512f"))) static void b3_hash16(const struct b3_many *job,
                                                         size_t first, uint8_t *out) {
  b3x16 h[8], lo, hi;
  for (int i = 0; i < 16; i++) {
    uint64_t counter = job->chunks ? job->counter + first + (uint64_t)i : 0;
    lo[i] = (uint32_t)counter;
    hi[i] = (uint32_t)(counter >> 32);
  }
  for (int i = 0; i < 8; i++) h[i] = (b3x16){0} + B3_IV[i];
  const uint8_t *in = job->in + first * job->stride;
  for (size_t b = 0; b < job->blocks; b++) {
    __m512i m[16];
    for (int i = 0; i < 16; i++) m[i] = _mm512_loadu_si512(in + i * job->stride + 64 * b);
    b3_transpose16(m);
    b3x16 v[16] = {h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
                   (b3x16){0} + B3_IV[0], (b3x16){0} + B3_IV[1], (b3x16){0} + B3_IV[2],
                   (b3x16){0} + B3_IV[3], lo, hi, (b3x16){0} + 64, (b3x16){0} + b3_flags(job, b)};
    b3x16 *w = (b3x16 *)m;
    B3_ROUNDS(v, w, B3_ROTR);
    for (int i = 0; i < 8; i++) h[i] = v[i] ^ v[i + 8];
  }
  for (int lane = 0; lane < 16; lane++) {
    for (int i = 0; i < 8; i++) memcpy(out + 32 * lane + 4 * i, &h[i][lane], 4);
  }
}

// Lanes the CPU and the kernel offer: 16 (AVX-512), 8 (AVX2) or 1.
static int b3_cpu_lanes(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return 1;
  unsigned xcr0, xcr0_high;
  __asm__("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
  // The kernel saves the YMM (and for AVX-512, opmask and ZMM) registers.
  if ((xcr0 & 0x06) != 0x06 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 1;
  if ((b & bit_AVX512F) && (xcr0 & 0xE6) == 0xE6) return 16;
  return (b & bit_AVX2) ? 8 : 1;
}
#else
static int b3_cpu_lanes(void) { return 1; }
#endif

// Lanes in use; 0 until the first call looks.
static _Atomic int b3_lanes = 0;

static void b3_hash_many(const struct b3_many *job, size_t n, uint8_t *out) {
  int lanes = b3_lanes;
  if (lanes == 0) b3_lanes = lanes = b3_cpu_lanes();
  size_t i = 0;
#if defined(__x86_64__)
  for (; lanes >= 16 && i + 16 <= n; i += 16) b3_hash16(job, i, out + 32 * i);
  for (; lanes >= 8 && i + 8 <= n; i += 8) b3_hash8(job, i, out + 32 * i);
#endif
  for (; i < n; i++) b3_hash_one(job, i, out + 32 * i);
}

// Which kernel runs, as its lane count: 16 (AVX-512), 8 (AVX2) or 1 (plain
// C). `most` > 0 caps it (for tests and benches of each path), at most what
// the CPU has; 0 looks at the CPU again; < 0 only reports.
PK_EXPORT int32_t pk_blake3_lanes(int32_t most) {
  if (most >= 0) {
    int lanes = b3_cpu_lanes();
    b3_lanes = most > 0 && most < lanes ? (most >= 16 ? 16 : most >= 8 ? 8 : 1) : lanes;
  }
  if (b3_lanes == 0) b3_lanes = b3_cpu_lanes();
  return b3_lanes;
}

// The chunk being filled: its CV so far and its last block, held back until
// the hasher knows whether more input follows.
struct b3_chunk {
  uint32_t cv[8];
  uint64_t counter;
  uint8_t block[64];
  uint8_t block_len;
  uint8_t blocks_done;
};

// An incremental hash (the Range receiver's, section 10).
// The stack holds the CVs of whole subtrees to the left of the chunk, merged
// lazily: a CV is merged only once input after it shows it is not the root.
struct pk_blake3 {
  struct b3_chunk chunk;
  uint8_t depth;
  uint32_t stack[54][8];
};

static void b3_chunk_reset(struct b3_chunk *c, uint64_t counter) {
  memcpy(c->cv, B3_IV, 32);
  c->counter = counter;
  c->block_len = 0;
  c->blocks_done = 0;
}

static size_t b3_chunk_len(const struct b3_chunk *c) {
  return 64 * (size_t)c->blocks_done + c->block_len;
}

static void b3_chunk_update(struct b3_chunk *c, const uint8_t *p, size_t len) {
  while (len > 0) {
    if (c->block_len == 64) {
      b3_compress(c->cv, c->block, 64, c->counter, c->blocks_done == 0 ? B3_CHUNK_START : 0);
      c->blocks_done++;
      c->block_len = 0;
    }
    size_t room = 64 - (size_t)c->block_len, take = room < len ? room : len;
    memcpy(c->block + c->block_len, p, take);
    c->block_len += (uint8_t)take;
    p += take;
    len -= take;
  }
}

// The chunk's last compression: its CV, or with B3_ROOT the hash.
static void b3_chunk_output(const struct b3_chunk *c, uint32_t root, uint32_t out[8]) {
  uint8_t block[64] = {0};
  memcpy(block, c->block, c->block_len);
  memcpy(out, c->cv, 32);
  uint32_t flags = (c->blocks_done == 0 ? B3_CHUNK_START : 0) | B3_CHUNK_END | root;
  b3_compress(out, block, c->block_len, c->counter, flags);
}

static void b3_parent(const uint32_t left[8], const uint32_t right[8], uint32_t root,
                      uint32_t out[8]) {
  uint8_t block[64];
  memcpy(block, left, 32);
  memcpy(block + 32, right, 32);
  memcpy(out, B3_IV, 32);
  b3_compress(out, block, 64, 0, B3_PARENT | root);
}

// Merges the stack down to one CV per bit of `counter`, the number of chunks
// left of input that follows: each is a complete subtree, none the root.
static void b3_merge(struct pk_blake3 *s, uint64_t counter) {
  while (s->depth > __builtin_popcountll(counter)) {
    s->depth--;
    b3_parent(s->stack[s->depth - 1], s->stack[s->depth], 0, s->stack[s->depth - 1]);
  }
}

// Pushes the CV of the subtree that starts at chunk `counter`.
static void b3_push(struct pk_blake3 *s, const uint32_t cv[8], uint64_t counter) {
  b3_merge(s, counter);
  memcpy(s->stack[s->depth++], cv, 32);
}

// The two CVs under the root of the subtree of `chunks` whole chunks (a
// power of two, at least 2) that starts at chunk `counter`: chunks and then
// each level of parents hashed many at a time, in place.
static void b3_subtree(const uint8_t *in, size_t chunks, uint64_t counter, uint8_t pair[64]) {
  uint8_t cvs[B3_SUBTREE_MAX * 32];
  struct b3_many job = {.in = in, .stride = B3_CHUNK, .blocks = 16, .counter = counter,
                        .chunks = 1};
  b3_hash_many(&job, chunks, cvs);
  for (size_t n = chunks; n > 2; n /= 2) {
    struct b3_many parents = {.in = cvs, .stride = 64, .blocks = 1};
    b3_hash_many(&parents, n / 2, cvs);
  }
  memcpy(pair, cvs, 64);
}

static void pk_blake3_init(void *ctx) {
  struct pk_blake3 *s = ctx;
  b3_chunk_reset(&s->chunk, 0);
  s->depth = 0;
}

static void pk_blake3_update(void *ctx, const void *data, uint64_t len) {
  struct pk_blake3 *s = ctx;
  const uint8_t *p = data;
  struct b3_chunk *c = &s->chunk;
  if (b3_chunk_len(c) > 0) {
    size_t take = B3_CHUNK - b3_chunk_len(c) < len ? B3_CHUNK - b3_chunk_len(c) : len;
    b3_chunk_update(c, p, take);
    p += take;
    len -= take;
    // Input follows: the chunk is complete, and not the root.
    if (len == 0) return;
    uint32_t cv[8];
    b3_chunk_output(c, 0, cv);
    b3_push(s, cv, c->counter);
    b3_chunk_reset(c, c->counter + 1);
  }
  // Whole subtrees while more than a chunk is left, each as large as the
  // input and the tree's shape allow (a subtree starts at a multiple of its
  // size). Its two top CVs are pushed, not their parent, which may be the root.
  while (len > B3_CHUNK) {
    uint64_t chunks = B3_SUBTREE_MAX;
    while (chunks * B3_CHUNK > len || (c->counter & (chunks - 1)) != 0) chunks /= 2;
    if (chunks == 1) {
      struct b3_many job = {.in = p, .stride = B3_CHUNK, .blocks = 16, .counter = c->counter,
                            .chunks = 1};
      uint32_t cv[8];
      b3_hash_one(&job, 0, (uint8_t *)cv);
      b3_push(s, cv, c->counter);
    } else {
      uint32_t pair[16];
      b3_subtree(p, chunks, c->counter, (uint8_t *)pair);
      b3_push(s, pair, c->counter);
      b3_push(s, pair + 8, c->counter + chunks / 2);
    }
    c->counter += chunks;
    p += chunks * B3_CHUNK;
    len -= chunks * B3_CHUNK;
  }
  if (len > 0) {
    b3_chunk_update(c, p, len);
    b3_merge(s, c->counter);
  }
}

// Writes the 32-byte hash to `out`; the context is spent.
static void pk_blake3_final(void *ctx, void *out) {
  struct pk_blake3 *s = ctx;
  uint32_t cv[8];
  size_t depth = s->depth;
  // The last node: the chunk, or the parent of the last two CVs when a
  // subtree ended the input; then merged with every subtree to its left.
  if (b3_chunk_len(&s->chunk) > 0 || depth == 0) {
    b3_chunk_output(&s->chunk, depth == 0 ? B3_ROOT : 0, cv);
  } else {
    depth -= 2;
    b3_parent(s->stack[depth], s->stack[depth + 1], depth == 0 ? B3_ROOT : 0, cv);
  }
  while (depth > 0) {
    depth--;
    b3_parent(s->stack[depth], cv, depth == 0 ? B3_ROOT : 0, cv);
  }
  memcpy(out, cv, 32);
}

// The BLAKE3 hash of `len` bytes at `data`, written to the 32 bytes at `out`.
PK_EXPORT void pk_blake3(const void *data, uint64_t len, void *out) {
  struct pk_blake3 s;
  pk_blake3_init(&s);
  pk_blake3_update(&s, data, len);
  pk_blake3_final(&s, out);
}

// ===========================================================================
// 9. Signal report: a write into a sealed object
// ===========================================================================

// A last word for a write into a sealed object:
//
// Sealed objects are mapped read-only, and JS cannot make a write into
// read-only memory an exception: the process gets SIGSEGV. This handler runs
// first and, when the fault is a write into a read-only mapping of a Packice
// memfd, says so on stderr before the process dies of that same SIGSEGV.
// Every other fault goes to the handler that was installed before (Rust's
// stack-overflow report, V8's WebAssembly trap handler) or to the default.
// Only async-signal-safe calls (open, read, write, close, sigaction).

static struct sigaction pk_prior_segv;
// Lines of /proc/self/maps, in static memory: a fault on an alternate signal
// stack of a few KiB has no room for them.
static char pk_maps[8192];
// Taken by one faulting thread at a time: two threads faulting at once would
// share the buffer (the second goes straight to the prior handler).
static atomic_flag pk_maps_busy = ATOMIC_FLAG_INIT;

static uintptr_t pk_parse_hex(const char **at, const char *end) {
  uintptr_t value = 0;
  for (; *at < end; (*at)++) {
    char c = **at;
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) break;
    value = value * 16 + (uintptr_t)digit;
  }
  return value;
}

// Whether the line of /proc/self/maps in [line, end) maps `addr` read-only
// from a Packice memfd: "start-end r--s offset dev inode /memfd:packice (deleted)".
static int pk_sealed_line(const char *line, const char *end, uintptr_t addr) {
  const char *at = line;
  uintptr_t start = pk_parse_hex(&at, end);
  if (at >= end || *at != '-') return 0;
  at++;
  uintptr_t stop = pk_parse_hex(&at, end);
  if (addr < start || addr >= stop || end - at < 5) return 0;
  if (at[2] == 'w') return 0;
  static const char name[] = "/memfd:packice";
  for (const char *p = at; p + sizeof name - 1 <= end; p++) {
    if (memcmp(p, name, sizeof name - 1) == 0) return 1;
  }
  return 0;
}

static int pk_in_sealed_mapping(uintptr_t addr) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t have = 0;
  int found = 0;
  for (;;) {
    ssize_t n = read(fd, pk_maps + have, sizeof pk_maps - have);
    if (n <= 0) break;
    have += (size_t)n;
    char *line = pk_maps;
    char *newline;
    while ((newline = memchr(line, '\n', have - (size_t)(line - pk_maps))) != NULL) {
      if (pk_sealed_line(line, newline, addr)) found = 1;
      line = newline + 1;
    }
    have -= (size_t)(line - pk_maps);
    memmove(pk_maps, line, have);
    // A line longer than the buffer: drop it.
    if (have == sizeof pk_maps) have = 0;
    if (found) break;
  }
  close(fd);
  return found;
}

static void pk_say(const char *text) {
  size_t length = strlen(text);
  while (length > 0) {
    ssize_t n = write(2, text, length);
    if (n <= 0) return;
    text += n;
    length -= (size_t)n;
  }
}

static void pk_on_segv(int sig, siginfo_t *info, void *context) {
  if (info != NULL && info->si_code == SEGV_ACCERR && !atomic_flag_test_and_set(&pk_maps_busy)) {
    int sealed = pk_in_sealed_mapping((uintptr_t)info->si_addr);
    atomic_flag_clear(&pk_maps_busy);
    if (sealed) {
      char hex[2 + 16 + 1];
      uintptr_t addr = (uintptr_t)info->si_addr;
      hex[0] = '0';
      hex[1] = 'x';
      for (int i = 0; i < 16; i++) hex[2 + i] = "0123456789abcdef"[(addr >> (60 - 4 * i)) & 15];
      hex[18] = '\0';
      pk_say("packice: this process wrote into the read-only memory of a sealed object at ");
      pk_say(hex);
      pk_say(": sealed objects are immutable, and the write ends the process with SIGSEGV. "
             "Copy the bytes first (handle.bytes.slice()) to change them.\n");
      // The write runs again on return and now ends the process, as it would have.
      signal(SIGSEGV, SIG_DFL);
      return;
    }
  }
  if (pk_prior_segv.sa_flags & SA_SIGINFO) {
    pk_prior_segv.sa_sigaction(sig, info, context);
  } else if (pk_prior_segv.sa_handler == SIG_DFL || pk_prior_segv.sa_handler == SIG_IGN) {
    signal(SIGSEGV, SIG_DFL);
  } else {
    pk_prior_segv.sa_handler(sig);
  }
}

static pthread_once_t pk_segv_once = PTHREAD_ONCE_INIT;
static int32_t pk_segv_installed;

static void pk_install_segv(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = pk_on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  pk_segv_installed = sigaction(SIGSEGV, &action, &pk_prior_segv) < 0 ? -errno : 0;
}

// Installs the handler once per process; native/load.ts calls it when it loads
// the library, in each runtime, maybe in two at once: installed twice, the
// handler would take itself for the one before it, and call itself forever on
// any other fault. Returns 0, or -errno.
PK_EXPORT int32_t pk_report_sealed_writes(void) {
  pthread_once(&pk_segv_once, pk_install_segv);
  return pk_segv_installed;
}

// ===========================================================================
// 10. HTTP/1.1 Range receiver: a response body straight into a memfd or memory, hashed as it lands
// ===========================================================================

// The client side of one keep-alive HTTP/1.1 connection, for the pieces of an
// object asked of another daemon (p2p/swarm/range_connection.ts). JS writes
// the request into `request`, calls pk_http_request (sends it, reads the
// response head into `head`: JS parses and checks it), then pk_http_recv_fd
// (into the object's memfd, with pwrite) or pk_http_recv (into memory, such
// as a scratch piece) for each run of body bytes: they go from the socket to
// their destination and into the piece's hash (SHA-256 or BLAKE3, as its
// record names) while they are still in cache, so a piece is verified
// without reading it again and without a copy through JS. Calls run on
// Deno's thread pool; each has a deadline
// (poll), and pk_http_cancel (shutdown) ends a call under way at once. The
// struct is C memory: a call still running when the process exits writes
// nowhere JS owned.

#define PK_HTTP_REQUEST_MAX 4096
#define PK_HTTP_HEAD_MAX 8192
// The most bytes one recv takes: hashed while still in cache.
#define PK_HTTP_RECV_STEP (256 << 10)
// pk_http_recv hashes once this many bytes wait, still in cache: BLAKE3 hashes
// whole KiB chunks many at a time, not the few KiB one recv may bring.
#define PK_HTTP_HASH_STEP (128 << 10)
// pk_http_recv's `flags`: start a hash, end it into c->digest, and (with
// the first) make it BLAKE3 rather than SHA-256.
enum { PK_HASH_START = 1, PK_HASH_END = 2, PK_HASH_BLAKE3 = 4 };

struct pk_http {
  int32_t fd;
  // Bytes of `head` that are the head (pk_http_request's result).
  int32_t head_length;
  // Body bytes read with the head, at head[head_length..+pending), for pk_http_recv.
  int32_t pending;
  // The errno of the write that ended the last pk_http_recv_fd, or 0: the
  // bytes could not land (ENOSPC, ENOMEM), which is no fault of the peer.
  int32_t write_error;
  uint8_t digest[32];
  char request[PK_HTTP_REQUEST_MAX];
  char head[PK_HTTP_HEAD_MAX];
  // The hash under way: BLAKE3 when `blake3` is 1.
  int32_t blake3;
  struct pk_sha256 sha;
  struct pk_blake3 b3;
  // pk_http_recv_fd's staging buffer, PK_HTTP_RECV_STEP bytes, made on first use.
  uint8_t *stage;
};

static void pk_http_hash_start(struct pk_http *c, int32_t flags) {
  if (!(flags & PK_HASH_START)) return;
  c->blake3 = (flags & PK_HASH_BLAKE3) != 0;
  if (c->blake3) pk_blake3_init(&c->b3);
  else pk_sha256_init(&c->sha);
}

static void pk_http_hash(struct pk_http *c, const uint8_t *p, uint64_t length) {
  if (c->blake3) pk_blake3_update(&c->b3, p, length);
  else pk_sha256_update(&c->sha, p, length);
}

static void pk_http_hash_end(struct pk_http *c, int32_t flags) {
  if (!(flags & PK_HASH_END)) return;
  if (c->blake3) pk_blake3_final(&c->b3, c->digest);
  else pk_sha256_final(&c->sha, c->digest);
}

// native/ffi.ts mirrors these offsets (HTTP_LAYOUT).
_Static_assert(offsetof(struct pk_http, pending) == 8, "pending at 8");
_Static_assert(offsetof(struct pk_http, write_error) == 12, "write_error at 12");
_Static_assert(offsetof(struct pk_http, digest) == 16, "digest at 16");
_Static_assert(offsetof(struct pk_http, request) == 48, "request at 48");
_Static_assert(offsetof(struct pk_http, head) == 48 + PK_HTTP_REQUEST_MAX, "head after request");

static int64_t pk_now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

// Waits until `fd` is ready for `events`, or the deadline: 0, or -ETIMEDOUT.
// A socket shut down (pk_http_cancel) or in error is ready: the call that
// follows sees why.
static int32_t pk_http_wait(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - pk_now_ms();
    if (left <= 0) return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return -errno;
  }
}

// Starts a connection to `ip` (IPv4 or IPv6 text, NUL-terminated) at `port`;
// the connect completes in pk_http_request. Stores the struct's address in
// *out. Returns 0, or -errno (-EINVAL for an address that is not an IP).
PK_EXPORT int32_t pk_http_open(const char *ip, int32_t port, uint64_t *out) {
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t length;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
  if (port <= 0 || port > 65535) return -EINVAL;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    length = sizeof *v6;
  } else {
    return -EINVAL;
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&addr, length) < 0 && errno != EINPROGRESS) {
    int error = errno;
    close(fd);
    return -error;
  }
  struct pk_http *c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    return -ENOMEM;
  }
  c->fd = fd;
  *out = (uint64_t)(uintptr_t)c;
  return 0;
}

// Sends the `length` bytes of c->request, then reads the response head into
// c->head (body bytes read with it are kept for pk_http_recv). Returns the
// head's length (through its blank line), or -errno: -ETIMEDOUT past
// `timeout_ms`, -ECONNRESET when the peer closed first (or the call was
// cancelled), -EMSGSIZE for a head longer than PK_HTTP_HEAD_MAX.
PK_EXPORT int32_t pk_http_request(struct pk_http *c, uint32_t length, int32_t timeout_ms) {
  int64_t deadline = pk_now_ms() + timeout_ms;
  if (length > PK_HTTP_REQUEST_MAX) return -EINVAL;
  c->head_length = 0;
  c->pending = 0;
  for (uint32_t sent = 0; sent < length;) {
    int32_t waited = pk_http_wait(c->fd, POLLOUT, deadline);
    if (waited < 0) return waited;
    ssize_t n = send(c->fd, c->request + sent, length - sent, MSG_NOSIGNAL);
    if (n > 0) sent += (uint32_t)n;
    else if (n < 0 && errno != EAGAIN && errno != EINTR) return -errno;
  }
  int32_t have = 0;
  for (;;) {
    ssize_t n = recv(c->fd, c->head + have, PK_HTTP_HEAD_MAX - have, 0);
    if (n == 0) return -ECONNRESET;
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return -errno;
      int32_t waited = pk_http_wait(c->fd, POLLIN, deadline);
      if (waited < 0) return waited;
      continue;
    }
    // The blank line may straddle the bytes read before.
    int32_t from = have < 3 ? 0 : have - 3;
    have += (int32_t)n;
    for (int32_t i = from; i + 4 <= have; i++) {
      if (memcmp(c->head + i, "\r\n\r\n", 4) == 0) {
        c->head_length = i + 4;
        c->pending = have - (i + 4);
        return c->head_length;
      }
    }
    if (have == PK_HTTP_HEAD_MAX) return -EMSGSIZE;
  }
}

// Receives exactly `length` body bytes into [dest, dest + length), feeding
// them to the connection's hash: `flags` PK_HASH_START starts a new one
// first (BLAKE3 with PK_HASH_BLAKE3), PK_HASH_END writes its digest to
// c->digest after. Never writes outside the range.
// Returns `length`, or -errno: -ETIMEDOUT past `timeout_ms`, -ECONNRESET when
// the peer closed first (or the call was cancelled).
PK_EXPORT int64_t pk_http_recv(struct pk_http *c, void *dest, uint64_t length,
                               int32_t timeout_ms, int32_t flags) {
  int64_t deadline = pk_now_ms() + timeout_ms;
  uint8_t *to = dest;
  uint64_t got = 0, hashed = 0;
  pk_http_hash_start(c, flags);
  if (c->pending > 0) {
    uint64_t take = (uint64_t)c->pending < length ? (uint64_t)c->pending : length;
    memcpy(to, c->head + c->head_length, take);
    c->head_length += (int32_t)take;
    c->pending -= (int32_t)take;
    got = take;
  }
  while (got < length) {
    uint64_t want = length - got < PK_HTTP_RECV_STEP ? length - got : PK_HTTP_RECV_STEP;
    ssize_t n = recv(c->fd, to + got, want, 0);
    if (n == 0) return -ECONNRESET;
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return -errno;
      int32_t waited = pk_http_wait(c->fd, POLLIN, deadline);
      if (waited < 0) return waited;
      continue;
    }
    got += (uint64_t)n;
    if (got - hashed >= PK_HTTP_HASH_STEP) {
      uint64_t whole = (got - hashed) & ~(uint64_t)(B3_CHUNK - 1);
      pk_http_hash(c, to + hashed, whole);
      hashed += whole;
    }
  }
  pk_http_hash(c, to + hashed, got - hashed);
  pk_http_hash_end(c, flags);
  return (int64_t)got;
}

// Writes [p, p + length) into `fd` at `offset`: 0, or -errno.
static int32_t pk_http_land(int fd, int64_t offset, const uint8_t *p, uint64_t length) {
  while (length > 0) {
    ssize_t n = pwrite(fd, p, length, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO;
    p += n;
    offset += n;
    length -= (uint64_t)n;
  }
  return 0;
}

// pk_http_recv into a file: `length` body bytes written into `fd` (a memfd)
// at `offset` with pwrite, from a small buffer in which they are hashed
// while in cache. Shared memory written whole this way needs neither zeroed
// pages nor page-table faults, so the object's memory need not be prepared
// before the first byte comes; nor need this process map it writable. A
// write that fails (no memory: ENOSPC, ENOMEM) ends the call with its -errno
// and stores it in c->write_error, which is 0 after every other outcome.
PK_EXPORT int64_t pk_http_recv_fd(struct pk_http *c, int32_t fd, int64_t offset, uint64_t length,
                                  int32_t timeout_ms, int32_t flags) {
  int64_t deadline = pk_now_ms() + timeout_ms;
  uint64_t got = 0;
  c->write_error = 0;
  if (c->stage == NULL && (c->stage = malloc(PK_HTTP_RECV_STEP)) == NULL) return -ENOMEM;
  pk_http_hash_start(c, flags);
  // The buffer is filled before it is written: whole pages, which shmem
  // need not zero, and one pwrite (one hold of the file's lock) per fill.
  // Body bytes read with the head start it.
  uint64_t staged = 0;
  if (c->pending > 0) {
    uint64_t take = (uint64_t)c->pending < length ? (uint64_t)c->pending : length;
    if (take > PK_HTTP_RECV_STEP) take = PK_HTTP_RECV_STEP;
    memcpy(c->stage, c->head + c->head_length, take);
    c->head_length += (int32_t)take;
    c->pending -= (int32_t)take;
    staged = take;
  }
  while (got < length) {
    uint64_t fill = length - got < PK_HTTP_RECV_STEP ? length - got : PK_HTTP_RECV_STEP;
    ssize_t n = staged == fill ? 0 : recv(c->fd, c->stage + staged, fill - staged, 0);
    if (n == 0 && staged < fill) return -ECONNRESET;
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return -errno;
      int32_t waited = pk_http_wait(c->fd, POLLIN, deadline);
      if (waited < 0) return waited;
      continue;
    }
    staged += (uint64_t)n;
    if (staged < fill) continue;
    pk_http_hash(c, c->stage, staged);
    int32_t landed = pk_http_land(fd, offset + (int64_t)got, c->stage, staged);
    if (landed < 0) return -(c->write_error = -landed);
    got += staged;
    staged = 0;
  }
  pk_http_hash_end(c, flags);
  return (int64_t)got;
}

// Ends a pk_http_request or pk_http_recv under way on another thread at once
// (they return -ECONNRESET or another error), and every later one.
PK_EXPORT int32_t pk_http_cancel(struct pk_http *c) {
  return shutdown(c->fd, SHUT_RDWR) < 0 && errno != ENOTCONN ? -errno : 0;
}

// Closes the connection and frees the struct; no call may be under way.
PK_EXPORT int32_t pk_http_close(struct pk_http *c) {
  int result = close(c->fd) < 0 ? -errno : 0;
  free(c->stage);
  free(c);
  return result;
}

// ===========================================================================
// 11. HTTP GET of sealed objects: a listener serving their memfds with sendfile
// ===========================================================================

// Deno.serve gives no socket fd, so its responses are copied from the
// object's mapping into the socket. This listener, on its own port and
// thread, answers GET and HEAD of the objects JS has registered (a sealed
// memfd each, reopened read-only here, with their response headers made by
// JS) with sendfile(2): the pages go to the socket without a copy in this
// process.
// It answers only what it can answer exactly as the Deno server would: a
// request it does not take (another route, a query, a token that is not the
// one, an object not registered, a conditional or odd range) goes to the
// Deno server on a connection of its own, and the answer comes back, so
// every refusal is the Deno server's own typed JSON error (a relay's range
// not verified yet is refused here, with the body JS gave at its
// registration, pk_hg_relay_put). The connection
// then reads the next request here, when the ends of that exchange could be
// told from the two heads (Content-Length); otherwise it stays a tunnel to
// the Deno server until either side closes.
//
// An object removed from the table is not served to new requests; a
// response under way holds a reference, and the fd is closed after its last
// byte.
//
// Bodies are sent with send(2) from a read-only mapping of the memfd (made
// from a read-only descriptor, so that the memfd can still take
// F_SEAL_WRITE) that the thread keeps while connections use it (and for a
// second after), not with sendfile: on loopback, sendfile from shmem builds
// socket buffers of 4 KiB page fragments, and cost both ends about twice the
// CPU of a copy into fewer, larger buffers (768 MiB at 400 MB/s: 240-350 ms
// against 140-170 ms for the sender, 250-330 against 130-215 for the
// receiver).
// The mapping is only read by the kernel inside send(), so bytes a shrunk
// file no longer has fail that call (EFAULT) rather than raise SIGBUS; the
// connection is then closed. Without a mapping, sendfile still serves.
//
// With upload limits the Deno server decides every object GET (token, upload
// slots, the repeat guard, which pieces of an object still arriving are
// verified): each request it is handed carries a header with the listener's
// secret, and the Deno server may answer one with a ticket, a range of a
// memfd registered here (pk_hg_ticket) with its response's header lines,
// instead of the bytes. The listener then sends that range itself with
// sendfile, a slice at a time from a token bucket that the Deno server's own
// bodies take from too (pk_tb_*), and reports the ticket done once its last
// byte left or the connection ended (pk_hg_done), so that JS frees the slot
// and the lease it held for it. The bytes never pass through JS.

// The most bytes of a request head read here, and of an object's header lines.
#define PK_HG_HEAD_MAX 16384
#define PK_HG_HEAD_LINES_MAX (1 << 20)
#define PK_HG_RELAY_BUF 65536
#define PK_HG_BUCKETS 4096
#define PK_HG_SENDFILE_MAX ((size_t)1 << 30)
// An unused mapping of a memfd is kept this long, for the next body from it.
#define PK_HG_MAP_LINGER_NS ((int64_t)1000000000)
// A connection waiting for a request, or for its client to read an answer
// sent here, for this long is closed; checked this often. A test build
// shortens both (-D) to sweep within its time.
#ifndef PK_HG_IDLE_S
#define PK_HG_IDLE_S 120
#endif
#ifndef PK_HG_SWEEP_MS
#define PK_HG_SWEEP_MS 5000
#endif
// epoll data of the listening socket and the wake-up eventfd; connections
// are their struct's address, the upstream side with bit 0 set.
#define PK_HG_LISTEN 0
#define PK_HG_WAKE 2
// The header naming a ticket in the Deno server's answer; and the one with
// the listener's secret in each request handed to it.
#define PK_HG_TICKET_HEADER "packice-ticket"
#define PK_HG_SECRET_MAX 128

static int64_t pk_hg_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

// A token bucket of bytes, as TokenBucket in transport/rate_limit.ts: `rate`
// bytes a second, bursts of at most `burst`; a take larger than what is there
// runs it into debt, and the taker waits the debt out. A wait that ends late
// is made up (pk_tb_overslept): the bucket then holds more than `burst`, up to
// `catch_up`, until that is spent. So is a short stall right after a wait: a
// take at most `bridge_ms` after the bucket's debt was paid off keeps all the
// bytes of that gap (BRIDGE_MS in rate_limit.ts).
struct pk_tb {
  pthread_mutex_t lock;
  double rate, burst, catch_up, bridge_ms, tokens;
  double cap;  // the most tokens held: `burst`, raised by late wake-ups until spent
  double taken;  // bytes taken so far
  int64_t at;  // ns, CLOCK_MONOTONIC
};

PK_EXPORT int32_t pk_tb_new(double rate, double burst, double catch_up, double bridge_ms,
                            uint64_t *out_handle) {
  if (!(rate > 0) || !(burst > 0) || !(catch_up > 0) || !(bridge_ms >= 0)) return -EINVAL;
  struct pk_tb *b = calloc(1, sizeof *b);
  if (b == NULL) return -ENOMEM;
  pthread_mutex_init(&b->lock, NULL);
  b->rate = rate;
  b->burst = burst;
  b->catch_up = catch_up > burst ? catch_up : burst;
  b->bridge_ms = bridge_ms;
  b->tokens = burst;
  b->cap = burst;
  b->at = pk_hg_ns();
  *out_handle = (uint64_t)(uintptr_t)b;
  return 0;
}

// Takes `bytes` now; returns the milliseconds to wait before they may pass.
PK_EXPORT double pk_tb_reserve(void *handle, double bytes) {
  struct pk_tb *b = handle;
  pthread_mutex_lock(&b->lock);
  int64_t now = pk_hg_ns();
  double tokens = b->tokens + (double)(now - b->at) * b->rate / 1e9;
  // In debt at the last take: `tokens` is what the time since the debt's end
  // brought, kept whole when that gap is short enough to be the taker's own work.
  int bridged = b->tokens < 0 && tokens <= b->bridge_ms * b->rate / 1000;
  double most = bridged ? b->catch_up : b->cap;
  if (tokens > most) tokens = most;
  b->cap = tokens > b->burst ? tokens : b->burst;
  b->tokens = tokens - bytes;
  b->taken += bytes;
  b->at = now;
  double wait = b->tokens >= 0 ? 0 : -b->tokens * 1000 / b->rate;
  pthread_mutex_unlock(&b->lock);
  return wait;
}

// A taker came back `ms` after the end of the wait pk_tb_reserve gave it: the
// bytes of that time are kept for it, up to `catch_up` (the most late, not
// the sum, when several were late at once).
PK_EXPORT void pk_tb_overslept(void *handle, double ms) {
  struct pk_tb *b = handle;
  if (!(ms > 0)) return;
  pthread_mutex_lock(&b->lock);
  double kept = b->burst + ms * b->rate / 1000;
  if (kept > b->cap) b->cap = kept < b->catch_up ? kept : b->catch_up;
  pthread_mutex_unlock(&b->lock);
}

// The bytes taken so far.
PK_EXPORT double pk_tb_taken(void *handle) {
  struct pk_tb *b = handle;
  pthread_mutex_lock(&b->lock);
  double taken = b->taken;
  pthread_mutex_unlock(&b->lock);
  return taken;
}

// Frees a bucket no listener and no JS uses any more.
PK_EXPORT int32_t pk_tb_free(void *handle) {
  struct pk_tb *b = handle;
  pthread_mutex_destroy(&b->lock);
  free(b);
  return 0;
}

struct pk_hg_object {
  struct pk_hg_object *next;
  int refs;  // 1 for the table, 1 per response under way, 1 while in `touched`; under the lock
  int touched;  // served since the last pk_hg_touched; under the lock
  uint32_t slot;  // JS's number for it
  int fd;
  uint64_t size;
  uint32_t id_len;
  uint32_t head_len;
  char *id;    // not NUL-terminated
  char *head;  // header lines, each ending in CRLF, without length, range and connection
  // A ticket (pk_hg_ticket): its number (0 for an object of the table), the
  // range it sends of the `size` bytes, and its answer's form (PK_HG_PARTIAL…).
  uint64_t ticket;
  uint64_t start, end;
  int partial;
  struct pk_hg_object *next_ticket;  // in the list of tickets not yet claimed
  // Whether `fd` is writable (no read-only one could be opened): it is then
  // never mapped, as its mapping would keep F_SEAL_WRITE out.
  int writable;
  // An object still arriving (pk_hg_relay_put): a Range of `?local=1` inside
  // the pieces verified so far is answered here; a bit per piece of
  // `piece_size` bytes, set by JS (pk_hg_relay_verified) with release order,
  // read here with acquire order. A range is answered here while fewer than
  // `max_uploads` bodies are under way on the listener (0: no limit);
  // beyond, the Deno server answers, in one of its upload slots.
  _Atomic uint8_t *pieces;
  uint64_t piece_size;
  uint32_t piece_count;
  uint32_t max_uploads;
  // The body (JSON) of the 503 a range touching a piece not verified gets
  // here (NULL: the Deno server answers those).
  char *refusal;
  uint32_t refusal_len;
  int linked;  // still in the table; under the lock
};

// A read-only descriptor of the memfd `fd`, from which mappings are made: a
// MAP_SHARED mapping of a writable descriptor, even PROT_READ, keeps
// F_SEAL_WRITE out (EBUSY) for as long as it lasts, and a relay's object
// must take every seal the moment its last piece lands, while the mapping
// lingers for the next body. Without /proc, a duplicate of `fd`, with
// *writable set: sent with sendfile then, never mapped.
static int pk_hg_read_only(int fd, int *writable) {
  int copy = pk_reopen_readonly(fd);
  *writable = copy < 0;
  return copy >= 0 ? copy : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

// A read-only mapping of a memfd, shared by the connections sending from it;
// the thread's only.
struct pk_hg_map {
  struct pk_hg_map *next;
  dev_t dev;
  ino_t ino;
  uint64_t length;
  char *addr;
  int refs;         // connections sending from it
  int64_t idle_at;  // when the last one stopped (ns)
};

// READ: waiting for a request head; SEND: answering one here; RELAY: one
// request and its response between the client and the Deno server, after
// which the connection reads again; TUNNEL: every byte both ways until
// either side closes, for exchanges whose end is not known from their heads.
enum pk_hg_state { PK_HG_READ, PK_HG_SEND, PK_HG_RELAY, PK_HG_TUNNEL };

struct pk_hg_conn {
  struct pk_hg_conn *prev, *next;
  int fd;
  int up;  // the Deno server's side while relaying, else -1
  enum pk_hg_state state;
  int close_after;
  time_t active;  // when it last made progress (CLOCK_MONOTONIC seconds)
  size_t in_len;  // request bytes in `in`
  char in[PK_HG_HEAD_MAX];
  char *out;  // response head
  size_t out_len, out_at;
  struct pk_hg_object *object;  // body under way
  uint64_t body_at, body_end;
  // Relay buffers: client to upstream, upstream to client; bodies move
  // through a pipe of each direction with splice(2) once a buffer is empty.
  char *c2u, *u2c;
  size_t c2u_len, c2u_at, u2c_len, u2c_at;
  int c_eof, u_eof;
  int c2u_pipe[2], u2c_pipe[2];
  size_t c2u_piped, u2c_piped;
  // The exchange relayed: request bytes still to read from the client, whether
  // its response has no body (HEAD), whether that response's head has arrived,
  // and its body bytes still to read.
  uint64_t req_left;
  int head_request;
  int resp_body;
  uint64_t resp_left;
  // Pacing by the bucket: body bytes taken from it and not yet sent, and
  // when the connection may send again (0: now).
  uint64_t credit;
  int64_t resume_at;
  // The mapping the body is sent from (NULL: not yet, or sendfile).
  struct pk_hg_map *map;
  int no_map;
  // A body is under way, counted in `uploads` (and a relay's in `relay_bodies`).
  int counted, relay_body;
};

struct pk_hg {
  int listen_fd;
  int epfd;
  int wakefd;
  atomic_int stop;
  pthread_t thread;
  pthread_mutex_t lock;  // the table and the objects' refs
  struct pk_hg_object *buckets[PK_HG_BUCKETS];
  struct sockaddr_storage upstream;
  socklen_t upstream_len;
  char *token;
  size_t token_len;
  struct pk_hg_conn *conns;  // the thread's only
  struct pk_hg_map *maps;    // the thread's only
  // Objects served since the last pk_hg_touched, each with a reference; under the lock.
  struct pk_hg_object **touched;
  size_t touched_len, touched_cap;
  atomic_uint_fast64_t served, relayed, bytes, relay_served, relay_bodies;
  // Bodies under way (tickets' too: the Deno server holds an upload slot
  // for each), which a relay's range answered here must find below its
  // limit; the thread's only.
  uint32_t uploads;
  // Limits (pk_hg_start): the bucket bodies take from (NULL: none), its slice,
  // and the header line with the secret added to requests handed over.
  struct pk_tb *bucket;
  uint64_t slice;
  char secret_line[PK_HG_SECRET_MAX + 64];
  size_t secret_line_len;
  // Tickets not yet claimed, the next number, and those done not yet
  // collected (room kept beside them for every live ticket); under the
  // lock. `donefd` is an eventfd written when one is done.
  struct pk_hg_object *tickets;
  uint64_t next_ticket;
  uint64_t *done;
  size_t done_len, done_cap, live_tickets;
  int donefd;
};

static uint32_t pk_hg_hash(const char *id, size_t len) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)id[i]) * 16777619u;
  return h % PK_HG_BUCKETS;
}

// Drops one reference; the last one closes the fd. Takes the lock.
static void pk_hg_unref(struct pk_hg *s, struct pk_hg_object *o) {
  pthread_mutex_lock(&s->lock);
  int last = --o->refs == 0;
  int done = last && o->ticket != 0;
  if (done) {
    s->done[s->done_len++] = o->ticket;  // room kept at pk_hg_ticket
    s->live_tickets--;
  }
  pthread_mutex_unlock(&s->lock);
  if (!last) return;
  if (done) {
    uint64_t one = 1;
    if (write(s->donefd, &one, sizeof one) < 0) { /* a pending wake-up is enough */ }
  }
  close(o->fd);
  free(o->id);
  free(o->head);
  free(o->refusal);
  free((void *)o->pieces);
  free(o);
}

// A mapping of at least `length` bytes of the memfd `fd`, with a reference
// for the caller, or NULL (then the caller sends with sendfile).
static struct pk_hg_map *pk_hg_map_get(struct pk_hg *s, int fd, uint64_t length) {
  struct stat st;
  if (length == 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size < length) return NULL;
  for (struct pk_hg_map *m = s->maps; m != NULL; m = m->next) {
    if (m->dev == st.st_dev && m->ino == st.st_ino && m->length >= length) {
      m->refs++;
      return m;
    }
  }
  struct pk_hg_map *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  void *addr = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    free(m);
    return NULL;
  }
  m->dev = st.st_dev;
  m->ino = st.st_ino;
  m->length = length;
  m->addr = addr;
  m->refs = 1;
  m->next = s->maps;
  s->maps = m;
  return m;
}

// Unmaps the mappings no connection used for PK_HG_MAP_LINGER_NS (all of
// them with `all`); returns when the next one is due (0: none).
static int64_t pk_hg_map_sweep(struct pk_hg *s, int64_t now, int all) {
  int64_t next = 0;
  for (struct pk_hg_map **at = &s->maps; *at != NULL;) {
    struct pk_hg_map *m = *at;
    if (m->refs == 0 && (all || now - m->idle_at >= PK_HG_MAP_LINGER_NS)) {
      *at = m->next;
      munmap(m->addr, m->length);
      free(m);
      continue;
    }
    if (m->refs == 0 && (next == 0 || m->idle_at + PK_HG_MAP_LINGER_NS < next)) {
      next = m->idle_at + PK_HG_MAP_LINGER_NS;
    }
    at = &m->next;
  }
  return next;
}

// Ends the body of `c`: its mapping and its object go.
static void pk_hg_end_body(struct pk_hg *s, struct pk_hg_conn *c) {
  if (c->counted) s->uploads--;
  if (c->relay_body) atomic_fetch_sub(&s->relay_bodies, 1);
  c->counted = c->relay_body = 0;
  if (c->map != NULL && --c->map->refs == 0) c->map->idle_at = pk_hg_ns();
  c->map = NULL;
  c->no_map = 0;
  if (c->object != NULL) pk_hg_unref(s, c->object);
  c->object = NULL;
}

// Unlinks the entry of `id`, if any, and returns it (the table's reference
// now the caller's). Call with the lock held.
static struct pk_hg_object *pk_hg_unlink(struct pk_hg *s, const char *id, size_t len) {
  struct pk_hg_object **at = &s->buckets[pk_hg_hash(id, len)];
  for (; *at != NULL; at = &(*at)->next) {
    struct pk_hg_object *o = *at;
    if (o->id_len == len && memcmp(o->id, id, len) == 0) {
      *at = o->next;
      o->linked = 0;
      return o;
    }
  }
  return NULL;
}

static void pk_hg_link(struct pk_hg *s, struct pk_hg_object *o);

// A new entry with one reference: copies of `id` and `head`, `fd` reopened
// read-only, and a cleared bit per piece when `piece_count` is not 0. Writes
// it to `out` and returns 0, or returns -errno.
static int32_t pk_hg_object_new(const char *id, uint32_t id_len, int32_t fd, uint64_t size,
                                const char *head, uint32_t head_len, uint32_t piece_count,
                                struct pk_hg_object **out) {
  struct pk_hg_object *o = calloc(1, sizeof *o);
  if (o == NULL) return -ENOMEM;
  o->id = malloc(id_len);
  o->head = malloc(head_len + 1);
  if (piece_count > 0) o->pieces = calloc(((size_t)piece_count + 7) / 8, 1);
  o->fd = pk_hg_read_only(fd, &o->writable);
  if (o->id == NULL || o->head == NULL || (piece_count > 0 && o->pieces == NULL) || o->fd < 0) {
    int error = o->fd < 0 ? errno : ENOMEM;
    if (o->fd >= 0) close(o->fd);
    free(o->id);
    free(o->head);
    free((void *)o->pieces);
    free(o);
    return -error;
  }
  memcpy(o->id, id, id_len);
  memcpy(o->head, head, head_len);
  o->id_len = id_len;
  o->head_len = head_len;
  o->size = size;
  o->refs = 1;
  *out = o;
  return 0;
}

// Registers a sealed object: its id, JS's slot number for it, its fd
// (reopened read-only here), size and header lines. Replaces an entry of the
// same id.
PK_EXPORT int32_t pk_hg_put(void *handle, const char *id, uint32_t id_len, uint32_t slot,
                            int32_t fd, uint64_t size, const char *head, uint32_t head_len) {
  struct pk_hg *s = handle;
  if (id_len == 0 || id_len > PK_HG_HEAD_MAX || head_len > PK_HG_HEAD_LINES_MAX) return -EINVAL;
  struct pk_hg_object *o;
  int32_t made = pk_hg_object_new(id, id_len, fd, size, head, head_len, 0, &o);
  if (made < 0) return made;
  o->slot = slot;
  pk_hg_link(s, o);
  return 0;
}

// Puts `o` in the table (with the caller's reference, which becomes the
// table's), replacing an entry of the same id.
static void pk_hg_link(struct pk_hg *s, struct pk_hg_object *o) {
  pthread_mutex_lock(&s->lock);
  struct pk_hg_object *old = pk_hg_unlink(s, o->id, o->id_len);
  uint32_t bucket = pk_hg_hash(o->id, o->id_len);
  o->next = s->buckets[bucket];
  o->linked = 1;
  s->buckets[bucket] = o;
  pthread_mutex_unlock(&s->lock);
  if (old != NULL) pk_hg_unref(s, old);
}

// Stops serving `id` to new requests. Returns 1 when it was registered, else 0.
PK_EXPORT int32_t pk_hg_remove(void *handle, const char *id, uint32_t id_len) {
  struct pk_hg *s = handle;
  pthread_mutex_lock(&s->lock);
  struct pk_hg_object *old = pk_hg_unlink(s, id, id_len);
  pthread_mutex_unlock(&s->lock);
  if (old == NULL) return 0;
  pk_hg_unref(s, old);
  return 1;
}

// Registers an object still arriving in the memfd `fd` (reopened read-only
// here) of `size` bytes, in pieces of `piece_size`, none verified yet, with
// the header lines of its answers; its ranges are answered here while fewer
// than `max_uploads` bodies are under way (0: no limit). A range touching a
// piece not verified is answered 503 here with the JSON body `refusal`
// (`refusal_len` bytes; 0: by the Deno server). Replaces an entry of the
// same id. Writes a handle for pk_hg_relay_verified and pk_hg_relay_end,
// which JS must call once.
PK_EXPORT int32_t pk_hg_relay_put(void *handle, const char *id, uint32_t id_len, int32_t fd,
                                  uint64_t size, uint64_t piece_size, uint32_t max_uploads,
                                  const char *head, uint32_t head_len, const char *refusal,
                                  uint32_t refusal_len, uint64_t *out_relay) {
  struct pk_hg *s = handle;
  if (id_len == 0 || id_len > PK_HG_HEAD_MAX || head_len > PK_HG_HEAD_LINES_MAX ||
      refusal_len > PK_HG_HEAD_MAX || size == 0 || piece_size == 0 ||
      (size + piece_size - 1) / piece_size > UINT32_MAX) {
    return -EINVAL;
  }
  uint32_t count = (uint32_t)((size + piece_size - 1) / piece_size);
  char *copy = NULL;
  if (refusal_len > 0) {
    copy = malloc(refusal_len);
    if (copy == NULL) return -ENOMEM;
    memcpy(copy, refusal, refusal_len);
  }
  struct pk_hg_object *o;
  int32_t made = pk_hg_object_new(id, id_len, fd, size, head, head_len, count, &o);
  if (made < 0) {
    free(copy);
    return made;
  }
  o->refusal = copy;
  o->refusal_len = refusal_len;
  o->piece_size = piece_size;
  o->piece_count = count;
  o->max_uploads = max_uploads;
  o->slot = UINT32_MAX;  // never reported by pk_hg_touched: JS reads it as it lands
  o->refs = 2;           // the table's and JS's, until pk_hg_relay_end
  pk_hg_link(s, o);
  *out_relay = (uint64_t)(uintptr_t)o;
  return 0;
}

// Piece `piece` of a relay has verified: its bytes are in the memfd for good.
PK_EXPORT int32_t pk_hg_relay_verified(void *relay, uint32_t piece) {
  struct pk_hg_object *o = relay;
  if (piece >= o->piece_count) return -EINVAL;
  atomic_fetch_or_explicit(&o->pieces[piece / 8], (uint8_t)(1u << (piece % 8)),
                           memory_order_release);
  return 0;
}

// Ends a relay (sealed, failed or aborted): new requests for it are the Deno
// server's again; answers under way finish from the listener's own fd.
PK_EXPORT int32_t pk_hg_relay_end(void *handle, void *relay) {
  struct pk_hg *s = handle;
  struct pk_hg_object *o = relay;
  pthread_mutex_lock(&s->lock);
  struct pk_hg_object *linked = NULL;
  // A sealed object offered since under the same id replaced it: that one stays.
  if (o->linked) linked = pk_hg_unlink(s, o->id, o->id_len);
  pthread_mutex_unlock(&s->lock);
  if (linked != NULL) pk_hg_unref(s, linked);
  pk_hg_unref(s, o);
  return 0;
}

// Whether every piece of bytes [start, stop) of relay `o` has verified.
static int pk_hg_relay_has(struct pk_hg_object *o, uint64_t start, uint64_t stop) {
  for (uint64_t p = start / o->piece_size; p <= (stop - 1) / o->piece_size; p++) {
    uint8_t bits = atomic_load_explicit(&o->pieces[p / 8], memory_order_acquire);
    if (!(bits & (1u << (p % 8)))) return 0;
  }
  return 1;
}

// The entry of `id` with a reference for the caller, or NULL.
static struct pk_hg_object *pk_hg_find(struct pk_hg *s, const char *id, size_t len) {
  pthread_mutex_lock(&s->lock);
  struct pk_hg_object *o = s->buckets[pk_hg_hash(id, len)];
  while (o != NULL && !(o->id_len == len && memcmp(o->id, id, len) == 0)) o = o->next;
  if (o != NULL) {
    o->refs++;
    if (!o->touched) {
      if (s->touched_len == s->touched_cap) {
        size_t cap = s->touched_cap == 0 ? 64 : 2 * s->touched_cap;
        struct pk_hg_object **grown = realloc(s->touched, cap * sizeof *grown);
        if (grown != NULL) {
          s->touched = grown;
          s->touched_cap = cap;
        }
      }
      if (s->touched_len < s->touched_cap) {
        o->touched = 1;
        o->refs++;
        s->touched[s->touched_len++] = o;
      }
    }
  }
  pthread_mutex_unlock(&s->lock);
  return o;
}

// Writes the slots of at most `max` objects served since the last call (so
// that JS marks them as read for the peer's recency) and returns how many.
PK_EXPORT int32_t pk_hg_touched(void *handle, uint32_t *out, int32_t max) {
  struct pk_hg *s = handle;
  if (max <= 0) return -EINVAL;
  struct pk_hg_object *gone[64];
  int count = 0;
  while (count < max) {
    int n_gone = 0;
    pthread_mutex_lock(&s->lock);
    while (count < max && n_gone < 64 && s->touched_len > 0) {
      struct pk_hg_object *o = s->touched[--s->touched_len];
      o->touched = 0;
      out[count++] = o->slot;
      if (--o->refs == 0) gone[n_gone++] = o;
    }
    int more = s->touched_len > 0;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n_gone; i++) {
      close(gone[i]->fd);
      free(gone[i]->id);
      free(gone[i]->head);
      free((void *)gone[i]->pieces);
      free(gone[i]);
    }
    if (!more) break;
  }
  return count;
}

// Closes a socket of a connection, out of the epoll first. A registration
// lasts as long as the socket's file, not this descriptor: a child process
// forked meanwhile holds a copy of every descriptor until its exec, and an
// event of the socket would then come with the address of a connection
// already freed (driven after free: a double free, a heap corrupted).
static void pk_hg_close_socket(struct pk_hg *s, int fd) {
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

static void pk_hg_close_conn(struct pk_hg *s, struct pk_hg_conn *c) {
  if (c->prev != NULL) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  pk_hg_close_socket(s, c->fd);
  if (c->up >= 0) pk_hg_close_socket(s, c->up);
  for (int i = 0; i < 2; i++) {
    if (c->c2u_pipe[i] >= 0) close(c->c2u_pipe[i]);
    if (c->u2c_pipe[i] >= 0) close(c->u2c_pipe[i]);
  }
  if (c->object != NULL) atomic_fetch_sub(&s->bytes, c->body_end - c->body_at);
  pk_hg_end_body(s, c);
  free(c->out);
  free(c->c2u);
  free(c->u2c);
  free(c);
}

static int pk_hg_lower_eq(const char *a, size_t len, const char *lower) {
  size_t n = strlen(lower);
  if (len != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = a[i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    if (ch != lower[i]) return 0;
  }
  return 1;
}

// Parses decimal digits [p, end) into *out; 0 when empty, not all digits or too large.
static int pk_hg_number(const char *p, const char *end, uint64_t *out) {
  if (p == end || end - p > 18) return 0;
  uint64_t n = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9') return 0;
    n = n * 10 + (uint64_t)(*p - '0');
  }
  *out = n;
  return 1;
}

// `Authorization: Bearer <token>` with the one token, as transport/http/auth.ts takes it.
static int pk_hg_token_ok(struct pk_hg *s, const char *v, size_t len) {
  if (len < 7 || !pk_hg_lower_eq(v, 6, "bearer") || (v[6] != ' ' && v[6] != '\t')) return 0;
  size_t i = 6;
  while (i < len && (v[i] == ' ' || v[i] == '\t')) i++;
  size_t start = i;
  while (i < len && v[i] != ' ' && v[i] != '\t') i++;
  size_t given = i - start;
  while (i < len && (v[i] == ' ' || v[i] == '\t')) i++;
  if (i != len) return 0;
  unsigned diff = (unsigned)(given ^ s->token_len);
  for (size_t k = 0; k < given; k++) {
    diff |= (uint8_t)v[start + k] ^ (uint8_t)s->token[k % s->token_len];
  }
  return diff == 0;
}

// A single `bytes=first-last`, `bytes=first-` or `bytes=-suffix` within
// `size`, as transport/http/conditional.ts reads it; 0 for anything else (the
// Deno server then answers).
static int pk_hg_range(const char *v, size_t len, uint64_t size, uint64_t *start,
                       uint64_t *end) {
  if (len < 7 || !pk_hg_lower_eq(v, 6, "bytes=")) return 0;
  const char *p = v + 6, *stop = v + len;
  const char *dash = memchr(p, '-', (size_t)(stop - p));
  if (dash == NULL) return 0;
  uint64_t first, last;
  if (dash == p) {
    if (!pk_hg_number(dash + 1, stop, &last) || last == 0) return 0;
    *start = last >= size ? 0 : size - last;
    *end = size;
  } else {
    if (!pk_hg_number(p, dash, &first)) return 0;
    if (dash + 1 == stop) {
      *end = size;
    } else {
      if (!pk_hg_number(dash + 1, stop, &last) || last < first) return 0;
      *end = last + 1 < size ? last + 1 : size;
    }
    *start = first;
  }
  return *start < size;
}

// A ticket's answer (pk_hg_ticket's `partial`): 200, 206 with Content-Range's
// total the file's `size`, or 206 whose total is `*` (RFC 9110 14.4: a body
// still arriving whose length is unknown, a spool's; `size` then only bounds
// the range).
#define PK_HG_WHOLE 0
#define PK_HG_PARTIAL 1
#define PK_HG_PARTIAL_OPEN 2

// Makes the response head of bytes [start, stop) of `o` (the whole, 200, or
// a range, 206, `partial` as a ticket's; for a HEAD, the head only) in `c->out`, and sets `c` to send
// them; the caller's reference to `o` becomes the connection's. -1 without
// memory (nothing changed).
static int pk_hg_answer(struct pk_hg *s, struct pk_hg_conn *c, struct pk_hg_object *o,
                        int partial, uint64_t start, uint64_t stop, int head_only) {
  char *out = malloc(o->head_len + 320);
  if (out == NULL) return -1;
  free(c->out);
  c->out = out;
  int len = snprintf(c->out, 64, "HTTP/1.1 %s\r\n", partial ? "206 Partial Content" : "200 OK");
  memcpy(c->out + len, o->head, o->head_len);
  len += (int)o->head_len;
  len += snprintf(c->out + len, 192, "content-length: %llu\r\n",
                  (unsigned long long)(stop - start));
  if (partial == PK_HG_PARTIAL_OPEN) {
    len += snprintf(c->out + len, 128, "content-range: bytes %llu-%llu/*\r\n",
                    (unsigned long long)start, (unsigned long long)(stop - 1));
  } else if (partial) {
    len += snprintf(c->out + len, 128, "content-range: bytes %llu-%llu/%llu\r\n",
                    (unsigned long long)start, (unsigned long long)(stop - 1),
                    (unsigned long long)o->size);
  }
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  len += (int)strftime(c->out + len, 64, "date: %a, %d %b %Y %H:%M:%S GMT\r\n", &utc);
  if (c->close_after) len += snprintf(c->out + len, 32, "connection: close\r\n");
  len += snprintf(c->out + len, 8, "\r\n");
  c->out_len = (size_t)len;
  c->out_at = 0;
  c->object = o;
  c->body_at = head_only ? stop : start;
  c->body_end = stop;
  c->credit = 0;
  c->resume_at = 0;
  c->counted = 1;
  s->uploads++;
  // Counted before the first byte leaves, so that a client holding the whole
  // answer reads counts that include it; an answer cut short takes back
  // what it did not send (pk_hg_close_conn).
  atomic_fetch_add(&s->served, 1);
  atomic_fetch_add(&s->bytes, c->body_end - c->body_at);
  return 0;
}

// Puts the 503 of a relay's range not verified yet (its `refusal` body, no
// upload slot taken) in `c->out`, and sets `c` to send it. -1 without memory
// (nothing changed).
static int pk_hg_not_in(struct pk_hg_conn *c, const struct pk_hg_object *o) {
  char *out = malloc(o->refusal_len + 256);
  if (out == NULL) return -1;
  free(c->out);
  c->out = out;
  int len = snprintf(out, 192,
                     "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                     "content-length: %u\r\n",
                     o->refusal_len);
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  len += (int)strftime(out + len, 64, "date: %a, %d %b %Y %H:%M:%S GMT\r\n", &utc);
  if (c->close_after) len += snprintf(out + len, 32, "connection: close\r\n");
  len += snprintf(out + len, 8, "\r\n");
  memcpy(out + len, o->refusal, o->refusal_len);
  c->out_len = (size_t)len + o->refusal_len;
  c->out_at = 0;
  c->object = NULL;
  c->body_at = c->body_end = 0;
  c->credit = 0;
  c->resume_at = 0;
  return 0;
}

enum pk_hg_verdict { PK_HG_MORE, PK_HG_ANSWER, PK_HG_HAND_OVER };

// Reads the request head in `c->in`: answers it (the response head in
// `c->out`, the body range set), hands the connection over, or asks for more
// bytes. `*used` is the length of the head answered.
static enum pk_hg_verdict pk_hg_parse(struct pk_hg *s, struct pk_hg_conn *c, size_t *used) {
  char *in = c->in;
  size_t n = c->in_len;
  char *end = NULL;
  for (size_t i = 3; i < n; i++) {
    if (in[i] == '\n' && in[i - 1] == '\r' && in[i - 2] == '\n' && in[i - 3] == '\r') {
      end = in + i + 1;
      break;
    }
  }
  if (end == NULL) return n == PK_HG_HEAD_MAX ? PK_HG_HAND_OVER : PK_HG_MORE;
  *used = (size_t)(end - in);
  char *line_end = memchr(in, '\r', (size_t)(end - in));
  int head_only;
  char *p;
  if (line_end - in > 4 && memcmp(in, "GET ", 4) == 0) {
    head_only = 0;
    p = in + 4;
  } else if (line_end - in > 5 && memcmp(in, "HEAD ", 5) == 0) {
    head_only = 1;
    p = in + 5;
  } else {
    return PK_HG_HAND_OVER;
  }
  static const char prefix[] = "/v1/objects/";
  size_t prefix_len = sizeof prefix - 1;
  char *target_end = memchr(p, ' ', (size_t)(line_end - p));
  if (target_end == NULL || (size_t)(target_end - p) <= prefix_len ||
      memcmp(p, prefix, prefix_len) != 0) {
    return PK_HG_HAND_OVER;
  }
  char *id = p + prefix_len;
  size_t id_len = (size_t)(target_end - id);
  // `?local=1`, as daemons ask each other for pieces: only a relay's are answered here.
  static const char local_query[] = "?local=1";
  size_t local_len = sizeof local_query - 1;
  int local = id_len > local_len &&
              memcmp(target_end - local_len, local_query, local_len) == 0;
  if (local) id_len -= local_len;
  for (size_t i = 0; i < id_len; i++) {
    char ch = id[i];
    if (ch == '/' || ch == '?' || ch == '%' || ch == '#' || (uint8_t)ch <= 0x20 ||
        (uint8_t)ch >= 0x7f) {
      return PK_HG_HAND_OVER;
    }
  }
  size_t version_len = (size_t)(line_end - target_end - 1);
  if (version_len == 8 && memcmp(target_end + 1, "HTTP/1.1", 8) == 0) {
    c->close_after = 0;
  } else if (version_len == 8 && memcmp(target_end + 1, "HTTP/1.0", 8) == 0) {
    c->close_after = 1;
  } else {
    return PK_HG_HAND_OVER;
  }
  const char *range = NULL;
  size_t range_len = 0;
  int authorized = s->token == NULL;
  int seen_auth = 0;
  for (char *line = line_end + 2; line < end - 2;) {
    char *eol = memchr(line, '\r', (size_t)(end - line));
    if (eol == NULL || eol[1] != '\n' || *line == ' ' || *line == '\t') return PK_HG_HAND_OVER;
    char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon == NULL) return PK_HG_HAND_OVER;
    char *v = colon + 1;
    char *v_end = eol;
    while (v < v_end && (*v == ' ' || *v == '\t')) v++;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) v_end--;
    size_t name_len = (size_t)(colon - line);
    size_t v_len = (size_t)(v_end - v);
    if (pk_hg_lower_eq(line, name_len, "authorization")) {
      if (seen_auth++) return PK_HG_HAND_OVER;
      if (s->token != NULL) authorized = pk_hg_token_ok(s, v, v_len);
    } else if (pk_hg_lower_eq(line, name_len, "range")) {
      if (range != NULL) return PK_HG_HAND_OVER;
      range = v;
      range_len = v_len;
    } else if (pk_hg_lower_eq(line, name_len, "connection")) {
      if (pk_hg_lower_eq(v, v_len, "close")) c->close_after = 1;
      else if (!pk_hg_lower_eq(v, v_len, "keep-alive")) return PK_HG_HAND_OVER;
    } else if (pk_hg_lower_eq(line, name_len, "content-length")) {
      if (!pk_hg_lower_eq(v, v_len, "0")) return PK_HG_HAND_OVER;
    } else if ((name_len >= 3 && pk_hg_lower_eq(line, 3, "if-")) ||
               pk_hg_lower_eq(line, name_len, "transfer-encoding") ||
               pk_hg_lower_eq(line, name_len, "expect") ||
               pk_hg_lower_eq(line, name_len, "upgrade")) {
      return PK_HG_HAND_OVER;
    }
    line = eol + 2;
  }
  if (!authorized) return PK_HG_HAND_OVER;
  struct pk_hg_object *o = pk_hg_find(s, id, id_len);
  if (o == NULL) return PK_HG_HAND_OVER;
  uint64_t start = 0, stop = o->size;
  // A HEAD answers with the whole object's headers, range or not, as the Deno server's.
  int partial = range != NULL && !head_only;
  int relay = o->pieces != NULL;
  // A relay answers another daemon's range of verified pieces, in a free
  // upload slot, and refuses one touching a piece not verified (503, with the
  // body JS gave); the Deno server answers the rest.
  if (relay && local && partial && o->refusal != NULL &&
      pk_hg_range(range, range_len, o->size, &start, &stop) &&
      !pk_hg_relay_has(o, start, stop)) {
    int refused = pk_hg_not_in(c, o);
    pk_hg_unref(s, o);
    return refused < 0 ? PK_HG_HAND_OVER : PK_HG_ANSWER;
  }
  if ((partial && !pk_hg_range(range, range_len, o->size, &start, &stop)) || local != relay ||
      (relay && (!partial || !pk_hg_relay_has(o, start, stop) ||
                 (o->max_uploads != 0 && s->uploads >= o->max_uploads)))) {
    pk_hg_unref(s, o);
    return PK_HG_HAND_OVER;
  }
  if (pk_hg_answer(s, c, o, partial, start, stop, head_only) < 0) {
    pk_hg_unref(s, o);
    return PK_HG_HAND_OVER;
  }
  if (relay) {
    c->relay_body = 1;
    atomic_fetch_add(&s->relay_bodies, 1);
    atomic_fetch_add(&s->relay_served, 1);
  }
  return PK_HG_ANSWER;
}

// The next header field of a head whose fields start at *line and which
// ends at `end` (its blank line included): the field's name, and its value
// without the blanks around it. Returns 1 and moves *line past the field, 0
// at the blank line, -1 for a line that is not a field.
static int pk_hg_next_field(const char **line, const char *end, const char **name,
                            size_t *name_len, const char **v, const char **v_end) {
  if (*line >= end - 2) return 0;
  const char *eol = memchr(*line, '\n', (size_t)(end - *line));
  if (eol == NULL) return -1;
  const char *colon = memchr(*line, ':', (size_t)(eol - *line));
  if (colon == NULL) return -1;
  *name = *line;
  *name_len = (size_t)(colon - *line);
  const char *from = colon + 1;
  const char *to = eol[-1] == '\r' ? eol - 1 : eol;
  while (from < to && (*from == ' ' || *from == '\t')) from++;
  while (to > from && (to[-1] == ' ' || to[-1] == '\t')) to--;
  *v = from;
  *v_end = to;
  *line = eol + 1;
  return 1;
}

// Where the fields of a head of `len` bytes start: after its first line.
static const char *pk_hg_fields(const char *in, size_t len) {
  const char *line = memchr(in, '\n', len);
  return line == NULL ? in + len : line + 1;
}

// The body length a request head of `len` bytes declares (Content-Length),
// or -1 when the end of the request cannot be told from its head (chunked,
// Expect, Upgrade, a malformed length): the connection is then tunnelled.
static int64_t pk_hg_request_body(const char *in, size_t len) {
  int64_t body = 0;
  const char *line = pk_hg_fields(in, len), *name, *v, *v_end;
  size_t name_len;
  int more;
  while ((more = pk_hg_next_field(&line, in + len, &name, &name_len, &v, &v_end)) > 0) {
    if (pk_hg_lower_eq(name, name_len, "content-length")) {
      uint64_t n;
      if (!pk_hg_number(v, v_end, &n)) return -1;
      body = (int64_t)n;
    } else if (pk_hg_lower_eq(name, name_len, "transfer-encoding") ||
               pk_hg_lower_eq(name, name_len, "expect") ||
               pk_hg_lower_eq(name, name_len, "upgrade")) {
      return -1;
    }
  }
  return more < 0 ? -1 : body;
}

// The body length of a response head of `len` bytes to a request that was
// HEAD or not, or -1 when its end is not known from its head (chunked, read
// to the close, an interim 1xx, `Connection: close`).
static int64_t pk_hg_response_body(const char *in, size_t len, int head_request) {
  if (len < 12 || memcmp(in, "HTTP/1.1 ", 9) != 0) return -1;
  int status = (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
  if (status < 200) return -1;
  int64_t body = -1;
  const char *line = pk_hg_fields(in, len), *name, *v, *v_end;
  size_t name_len;
  int more;
  while ((more = pk_hg_next_field(&line, in + len, &name, &name_len, &v, &v_end)) > 0) {
    if (pk_hg_lower_eq(name, name_len, "content-length")) {
      uint64_t n;
      if (!pk_hg_number(v, v_end, &n)) return -1;
      body = (int64_t)n;
    } else if (pk_hg_lower_eq(name, name_len, "transfer-encoding")) {
      return -1;
    } else if (pk_hg_lower_eq(name, name_len, "connection") &&
               pk_hg_lower_eq(v, (size_t)(v_end - v), "close")) {
      return -1;
    }
  }
  if (more < 0) return -1;
  if (head_request || status == 204 || status == 304) return 0;
  return body;
}

// A connection to the Deno server for the next exchange: the one of the
// last exchange while the server keeps it open (nothing to read on it, not
// even its end), else a new one.
static int pk_hg_connect_up(struct pk_hg *s, struct pk_hg_conn *c) {
  if (c->c2u == NULL) c->c2u = malloc(PK_HG_RELAY_BUF);
  if (c->u2c == NULL) c->u2c = malloc(PK_HG_RELAY_BUF);
  if (c->c2u == NULL || c->u2c == NULL) return -1;
  if (c->up >= 0) {
    char byte;
    if (recv(c->up, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN) {
      c->c2u_len = c->c2u_at = c->u2c_len = c->u2c_at = 0;
      c->c_eof = c->u_eof = 0;
      return 0;
    }
    pk_hg_close_socket(s, c->up);
    c->up = -1;
  }
  // Without pipes, bodies go through the buffers.
  if (c->c2u_pipe[0] < 0 && pipe2(c->c2u_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
    c->c2u_pipe[0] = c->c2u_pipe[1] = -1;
  }
  if (c->u2c_pipe[0] < 0 && pipe2(c->u2c_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
    c->u2c_pipe[0] = c->u2c_pipe[1] = -1;
  }
  int up = socket(s->upstream.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (up < 0) return -1;
  if (connect(up, (struct sockaddr *)&s->upstream, s->upstream_len) < 0 ||
      fcntl(up, F_SETFL, O_NONBLOCK) < 0) {
    close(up);
    return -1;
  }
  int one = 1;
  setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.u64 = (uint64_t)(uintptr_t)c | 1};
  if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, up, &event) < 0) {
    close(up);
    return -1;
  }
  c->up = up;
  c->c2u_len = c->c2u_at = c->u2c_len = c->u2c_at = 0;
  c->c_eof = c->u_eof = 0;
  return 0;
}

// Hands the request at the start of `c->in` (its head `used` bytes long; 0
// when it did not end within the buffer) to the Deno server: as one
// exchange when its end and its response's can be told from their heads,
// else as a tunnel for the rest of the connection.
static int pk_hg_hand_over(struct pk_hg *s, struct pk_hg_conn *c, size_t used) {
  if (pk_hg_connect_up(s, c) < 0) return -1;
  atomic_fetch_add(&s->relayed, 1);
  int64_t body = used == 0 ? -1 : pk_hg_request_body(c->in, used);
  size_t take = c->in_len;
  // The secret goes after the request line of an exchange (whose answer's
  // head is read here, so that a ticket in it is taken), never into a tunnel.
  size_t line = 0;
  if (body < 0) {
    c->state = PK_HG_TUNNEL;
  } else {
    uint64_t request = used + (uint64_t)body;
    if (take > request) take = (size_t)request;
    c->req_left = request - take;
    c->head_request = memcmp(c->in, "HEAD ", 5) == 0;
    c->resp_body = 0;
    c->close_after = 0;
    c->state = PK_HG_RELAY;
    if (s->secret_line_len > 0) {
      const char *eol = memchr(c->in, '\n', used);
      if (eol != NULL) line = (size_t)(eol + 1 - c->in);
    }
  }
  if (line > 0) {
    memcpy(c->c2u, c->in, line);
    memcpy(c->c2u + line, s->secret_line, s->secret_line_len);
    memcpy(c->c2u + line + s->secret_line_len, c->in + line, take - line);
    c->c2u_len = take + s->secret_line_len;
  } else {
    memcpy(c->c2u, c->in, take);
    c->c2u_len = take;
  }
  memmove(c->in, c->in + take, c->in_len - take);
  c->in_len -= take;
  return 0;
}

// One direction of a relay: bytes already read into `buf` (from `at` to
// `len`) go first, then the rest moves through `pipe` (or `buf`, without one).
struct pk_hg_way {
  int from, to;
  char *buf;
  size_t *len, *at;
  int *pipe;
  size_t *piped;  // bytes in the pipe
  int *eof;
  uint64_t *left;  // at most this many more bytes are read, when not NULL
};

// Moves bytes one way until either side would block. Returns -1 on an
// error, else whether anything moved; sets *eof at the end of `from`,
// shutting the writing side of `to` once nothing is left to send.
static int pk_hg_pump(struct pk_hg_way w) {
  int moved = 0;
  int splicing = w.pipe[0] >= 0;
  const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  while (1) {
    ssize_t n;
    if (*w.at < *w.len) {
      n = send(w.to, w.buf + *w.at, *w.len - *w.at, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR ? moved : -1;
      *w.at += (size_t)n;
      moved = 1;
      continue;
    }
    *w.at = *w.len = 0;
    if (*w.piped > 0) {
      n = splice(w.pipe[0], NULL, w.to, NULL, *w.piped, flags);
      if (n < 0) return errno == EAGAIN || errno == EINTR ? moved : -1;
      *w.piped -= (size_t)n;
      moved = 1;
      continue;
    }
    if (*w.eof || (w.left != NULL && *w.left == 0)) return moved;
    size_t room = PK_HG_RELAY_BUF;
    if (w.left != NULL && *w.left < room) room = (size_t)*w.left;
    // The pipe is empty here, so EAGAIN means `from` has nothing to read.
    n = splicing ? splice(w.from, NULL, w.pipe[1], NULL, room, flags)
                 : recv(w.from, w.buf, room, 0);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? moved : -1;
    if (n == 0) {
      *w.eof = 1;
      shutdown(w.to, SHUT_WR);
      return 1;
    }
    if (splicing) *w.piped = (size_t)n;
    else *w.len = (size_t)n;
    if (w.left != NULL) *w.left -= (uint64_t)n;
    moved = 1;
  }
}

static struct pk_hg_way pk_hg_c2u(struct pk_hg_conn *c, uint64_t *left) {
  return (struct pk_hg_way){c->fd, c->up, c->c2u, &c->c2u_len, &c->c2u_at,
                            c->c2u_pipe, &c->c2u_piped, &c->c_eof, left};
}

static struct pk_hg_way pk_hg_u2c(struct pk_hg_conn *c, uint64_t *left) {
  return (struct pk_hg_way){c->up, c->fd, c->u2c, &c->u2c_len, &c->u2c_at,
                            c->u2c_pipe, &c->u2c_piped, &c->u_eof, left};
}

// Unlinks ticket `number` from the tickets not yet claimed and returns it
// (the list's reference now the caller's), or NULL. Takes the lock.
static struct pk_hg_object *pk_hg_claim(struct pk_hg *s, uint64_t number) {
  pthread_mutex_lock(&s->lock);
  struct pk_hg_object **at = &s->tickets;
  while (*at != NULL && (*at)->ticket != number) at = &(*at)->next_ticket;
  struct pk_hg_object *o = *at;
  if (o != NULL) *at = o->next_ticket;
  pthread_mutex_unlock(&s->lock);
  return o;
}

// When the Deno server's answer (its head `head` bytes of `c->u2c`) names a
// ticket, the exchange ends and the connection sends the ticket's range:
// returns 1. 0 when it names none; -1 for a ticket not (or no longer) there,
// or an exchange not over: the connection is closed, and its client asks
// again.
static int pk_hg_take_ticket(struct pk_hg *s, struct pk_hg_conn *c, size_t head) {
  if (s->secret_line_len == 0) return 0;
  const char *line = pk_hg_fields(c->u2c, head), *name, *v, *v_end;
  size_t name_len;
  uint64_t number = 0;
  int close_after = 0;
  while (pk_hg_next_field(&line, c->u2c + head, &name, &name_len, &v, &v_end) > 0) {
    if (pk_hg_lower_eq(name, name_len, PK_HG_TICKET_HEADER)) {
      if (!pk_hg_number(v, v_end, &number) || number == 0) return -1;
    } else if (pk_hg_lower_eq(name, name_len, "connection") &&
               pk_hg_lower_eq(v, (size_t)(v_end - v), "close")) {
      close_after = 1;
    }
  }
  if (number == 0) return 0;
  struct pk_hg_object *o = pk_hg_claim(s, number);
  if (o == NULL) return -1;
  int over = c->req_left == 0 && c->c2u_at == c->c2u_len && c->c2u_piped == 0 &&
             c->u2c_len == head && c->u2c_piped == 0;
  c->close_after = close_after;
  if (!over || pk_hg_answer(s, c, o, o->partial, o->start, o->end, 0) < 0) {
    pk_hg_unref(s, o);
    return -1;
  }
  // The Deno server's connection stays for the next exchange, unless it ends.
  if (close_after) {
    pk_hg_close_socket(s, c->up);
    c->up = -1;
  }
  c->u2c_len = c->u2c_at = 0;
  c->state = PK_HG_SEND;
  return 1;
}

// Reads the Deno server's response head into `u2c`, then sends it on. Returns
// -1 on an error, else whether anything moved.
static int pk_hg_response_head(struct pk_hg *s, struct pk_hg_conn *c) {
  int moved = 0;
  while (!c->resp_body) {
    ssize_t r = recv(c->up, c->u2c + c->u2c_len, PK_HG_RELAY_BUF - c->u2c_len, 0);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? moved : -1;
    if (r == 0) return -1;
    moved = 1;
    size_t from = c->u2c_len < 3 ? 0 : c->u2c_len - 3;
    c->u2c_len += (size_t)r;
    size_t head = 0;
    for (size_t i = from + 3; i < c->u2c_len; i++) {
      if (memcmp(c->u2c + i - 3, "\r\n\r\n", 4) == 0) {
        head = i + 1;
        break;
      }
    }
    if (head == 0) {
      if (c->u2c_len == PK_HG_RELAY_BUF) c->state = PK_HG_TUNNEL;
      if (c->state == PK_HG_TUNNEL) return moved;
      continue;
    }
    int taken = pk_hg_take_ticket(s, c, head);
    if (taken != 0) return taken;
    int64_t body = pk_hg_response_body(c->u2c, head, c->head_request);
    uint64_t read_body = c->u2c_len - head;
    if (body < 0 || read_body > (uint64_t)body) {
      c->state = PK_HG_TUNNEL;
      return moved;
    }
    c->resp_body = 1;
    c->resp_left = (uint64_t)body - read_body;
    c->u2c_at = 0;
  }
  return moved;
}

// Relays one exchange; returns -1 on an error or a side that closed early,
// else whether anything moved. The state is READ again once it is over.
static int pk_hg_relay(struct pk_hg *s, struct pk_hg_conn *c) {
  int a = pk_hg_pump(pk_hg_c2u(c, &c->req_left));
  if (a < 0 || c->c_eof) return -1;
  int b = pk_hg_response_head(s, c);
  if (b < 0) return -1;
  if (c->state == PK_HG_TUNNEL || c->state == PK_HG_SEND) return 1;
  if (c->resp_body) {
    int body = pk_hg_pump(pk_hg_u2c(c, &c->resp_left));
    if (body < 0 || c->u_eof) return -1;
    b |= body;
  }
  if (c->resp_body && c->resp_left == 0 && c->u2c_at == c->u2c_len && c->u2c_piped == 0 &&
      c->req_left == 0 && c->c2u_at == c->c2u_len && c->c2u_piped == 0) {
    // Its end was told from the heads: the Deno server's connection stays for the next one.
    c->state = PK_HG_READ;
    return 1;
  }
  return a || b;
}

// Makes every step a connection can make now. Returns -1 when it is done.
static int pk_hg_drive(struct pk_hg *s, struct pk_hg_conn *c) {
  while (1) {
    if (c->state == PK_HG_TUNNEL) {
      // Bytes read ahead of an exchange that turned into a tunnel go first.
      if (c->in_len > 0 && c->c2u_at == c->c2u_len && c->c2u_piped == 0) {
        memcpy(c->c2u, c->in, c->in_len);
        c->c2u_len = c->in_len;
        c->c2u_at = 0;
        c->in_len = 0;
      }
      int a = pk_hg_pump(pk_hg_c2u(c, NULL));
      int b = pk_hg_pump(pk_hg_u2c(c, NULL));
      if (a < 0 || b < 0 || (c->c_eof && c->u_eof)) return -1;
      if (a == 0 && b == 0) return 0;
      continue;
    }
    if (c->state == PK_HG_RELAY) {
      int moved = pk_hg_relay(s, c);
      if (moved < 0) return -1;
      if (moved == 0) return 0;
      continue;
    }
    if (c->state == PK_HG_SEND) {
      if (c->out_at < c->out_len) {
        int more = c->body_at < c->body_end ? MSG_MORE : 0;
        ssize_t w = send(c->fd, c->out + c->out_at, c->out_len - c->out_at, MSG_NOSIGNAL | more);
        if (w < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->out_at += (size_t)w;
        continue;
      }
      if (c->body_at < c->body_end) {
        off_t offset = (off_t)c->body_at;
        size_t count = c->body_end - c->body_at;
        if (count > PK_HG_SENDFILE_MAX) count = PK_HG_SENDFILE_MAX;
        if (s->bucket != NULL) {
          // A slice at a time from the bucket; its debt is waited out here.
          int64_t now = pk_hg_ns();
          if (c->resume_at > now) return 0;
          if (c->resume_at != 0) pk_tb_overslept(s->bucket, (double)(now - c->resume_at) / 1e6);
          c->resume_at = 0;
          if (c->credit == 0) {
            uint64_t want = s->slice < count ? s->slice : count;
            double wait_ms = pk_tb_reserve(s->bucket, (double)want);
            c->credit = want;
            if (wait_ms > 0) {
              c->resume_at = now + (int64_t)(wait_ms * 1e6) + 1;
              return 0;
            }
          }
          if (count > c->credit) count = (size_t)c->credit;
        }
        if (c->map == NULL && !c->no_map) {
          c->map = c->object->writable ? NULL : pk_hg_map_get(s, c->object->fd, c->object->size);
          c->no_map = c->map == NULL;
        }
        ssize_t w = c->map != NULL
                        ? send(c->fd, c->map->addr + c->body_at, count, MSG_NOSIGNAL)
                        : sendfile(c->fd, c->object->fd, &offset, count);
        if (w < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (w == 0) return -1;  // the file is shorter than registered
        c->body_at += (uint64_t)w;
        if (s->bucket != NULL) c->credit -= (uint64_t)w;
        continue;
      }
      pk_hg_end_body(s, c);
      if (c->close_after) return -1;
      c->state = PK_HG_READ;
      continue;
    }
    // PK_HG_READ: a head already buffered (pipelined), else read more.
    if (c->in_len > 0) {
      size_t used = 0;
      enum pk_hg_verdict verdict = pk_hg_parse(s, c, &used);
      if (verdict == PK_HG_ANSWER) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        c->state = PK_HG_SEND;
        continue;
      }
      if (verdict == PK_HG_HAND_OVER) {
        if (pk_hg_hand_over(s, c, used) < 0) return -1;
        continue;
      }
    }
    ssize_t r = recv(c->fd, c->in + c->in_len, PK_HG_HEAD_MAX - c->in_len, 0);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (r == 0) return -1;
    c->in_len += (size_t)r;
  }
}

static time_t pk_hg_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec;
}

static void pk_hg_accept(struct pk_hg *s) {
  while (1) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a failure the next event retries
    struct pk_hg_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->up = -1;
    c->c2u_pipe[0] = c->c2u_pipe[1] = c->u2c_pipe[0] = c->u2c_pipe[1] = -1;
    c->state = PK_HG_READ;
    c->active = pk_hg_now();
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                .data.u64 = (uint64_t)(uintptr_t)c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &event) < 0) {
      close(fd);
      free(c);
      continue;
    }
    c->next = s->conns;
    if (s->conns != NULL) s->conns->prev = c;
    s->conns = c;
  }
}

static void *pk_hg_loop(void *arg) {
  struct pk_hg *s = arg;
  struct epoll_event events[256];
  time_t swept = pk_hg_now();
  while (!atomic_load(&s->stop)) {
    // Connections paced by the bucket wake when their wait is out.
    int64_t soonest = 0;
    for (struct pk_hg_conn *c = s->conns; c != NULL; c = c->next) {
      if (c->resume_at != 0 && (soonest == 0 || c->resume_at < soonest)) soonest = c->resume_at;
    }
    int64_t unmap_at = pk_hg_map_sweep(s, pk_hg_ns(), 0);
    if (unmap_at != 0 && (soonest == 0 || unmap_at < soonest)) soonest = unmap_at;
    int timeout = PK_HG_SWEEP_MS;
    if (soonest != 0) {
      int64_t left = (soonest - pk_hg_ns() + 999999) / 1000000;
      timeout = left < 0 ? 0 : left < timeout ? (int)left : timeout;
    }
    int n = epoll_wait(s->epfd, events, 256, timeout);
    if (n < 0 && errno != EINTR) break;
    time_t now = pk_hg_now();
    for (int i = 0; i < n && !atomic_load(&s->stop); i++) {
      uint64_t data = events[i].data.u64;
      if (data == PK_HG_LISTEN) {
        pk_hg_accept(s);
      } else if (data != PK_HG_WAKE) {
        struct pk_hg_conn *c = (struct pk_hg_conn *)(uintptr_t)(data & ~(uint64_t)1);
        // A connection closed earlier in this batch may still have an event
        // here: both of its fds' events come in one batch, so drive once.
        int seen = 0;
        for (int k = 0; k < i; k++) {
          if ((events[k].data.u64 & ~(uint64_t)1) == (data & ~(uint64_t)1)) seen = 1;
        }
        if (seen) continue;
        c->active = now;
        if (pk_hg_drive(s, c) < 0) pk_hg_close_conn(s, c);
      }
    }
    if (soonest != 0 && !atomic_load(&s->stop)) {
      int64_t at = pk_hg_ns();
      for (struct pk_hg_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->resume_at == 0 || c->resume_at > at) continue;
        c->active = now;
        if (pk_hg_drive(s, c) < 0) pk_hg_close_conn(s, c);
      }
    }
    // After this batch's events: a connection closed here may have one in it,
    // and its memory must not be read once freed.
    if (now - swept >= PK_HG_SWEEP_MS / 1000) {
      swept = now;
      for (struct pk_hg_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        // Relayed exchanges are the Deno server's to time out: it may answer slowly (a fetch).
        int own = c->state == PK_HG_READ || c->state == PK_HG_SEND;
        if (own && now - c->active > PK_HG_IDLE_S) pk_hg_close_conn(s, c);
      }
    }
  }
  while (s->conns != NULL) pk_hg_close_conn(s, s->conns);
  pk_hg_map_sweep(s, 0, 1);
  return NULL;
}

static int pk_hg_address(const char *host, uint16_t port, struct sockaddr_storage *out,
                         socklen_t *len) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return 0;
  }
  return -EINVAL;
}

static void pk_hg_free(struct pk_hg *s) {
  while (s->touched_len > 0) pk_hg_unref(s, s->touched[--s->touched_len]);
  while (s->tickets != NULL) {
    struct pk_hg_object *o = s->tickets;
    s->tickets = o->next_ticket;
    pk_hg_unref(s, o);
  }
  free(s->touched);
  if (s->listen_fd >= 0) close(s->listen_fd);
  if (s->epfd >= 0) close(s->epfd);
  if (s->wakefd >= 0) close(s->wakefd);
  for (int i = 0; i < PK_HG_BUCKETS; i++) {
    while (s->buckets[i] != NULL) {
      struct pk_hg_object *o = s->buckets[i];
      s->buckets[i] = o->next;
      pk_hg_unref(s, o);
    }
  }
  pthread_mutex_destroy(&s->lock);
  if (s->donefd >= 0) close(s->donefd);
  free(s->done);
  free(s->token);
  free(s);
}

// Listens on `host`:`port` (NUL-terminated numeric address; port 0 picks a
// free one) and starts the thread. Requests it does not answer go to the
// Deno server at `up_host`:`up_port`. `token` (`token_len` bytes; 0 for
// none) is the bearer token requests must carry. With a `secret`
// (`secret_len` bytes, 0 for none), requests handed over carry it in
// `Packice-Native-Offer`, and their answers may be tickets (pk_hg_ticket);
// bodies then take `slice` bytes at a time from `bucket` when there is one
// (a pk_tb, which must outlive the listener). Writes the handle; returns the
// port listened on.
PK_EXPORT int32_t pk_hg_start(const char *host, int32_t port, const char *up_host,
                              int32_t up_port, const char *token, uint32_t token_len,
                              const char *secret, uint32_t secret_len, void *bucket,
                              uint64_t slice, uint64_t *out_handle) {
  if (port < 0 || port > 65535 || up_port <= 0 || up_port > 65535) return -EINVAL;
  if (secret_len > PK_HG_SECRET_MAX || (bucket != NULL && (slice == 0 || secret_len == 0))) {
    return -EINVAL;
  }
  for (uint32_t i = 0; i < secret_len; i++) {
    if (secret[i] <= 0x20 || secret[i] >= 0x7f) return -EINVAL;
  }
  pk_pin();
  struct pk_hg *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  s->listen_fd = s->epfd = s->wakefd = s->donefd = -1;
  s->bucket = bucket;
  s->slice = slice;
  if (secret_len > 0) {
    int line = snprintf(s->secret_line, sizeof s->secret_line, "packice-native-offer: %.*s\r\n",
                        (int)secret_len, secret);
    s->secret_line_len = (size_t)line;
  }
  pthread_mutex_init(&s->lock, NULL);
  atomic_init(&s->stop, 0);
  struct sockaddr_storage address;
  socklen_t address_len;
  int error = -pk_hg_address(host, (uint16_t)port, &address, &address_len);
  if (error == 0) error = -pk_hg_address(up_host, (uint16_t)up_port, &s->upstream, &s->upstream_len);
  if (error == 0 && token_len > 0) {
    s->token = malloc(token_len);
    if (s->token == NULL) error = ENOMEM;
    else memcpy(s->token, token, token_len);
    s->token_len = token_len;
  }
  int one = 1;
  if (error == 0) {
    s->listen_fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event listen_event = {.events = EPOLLIN, .data.u64 = PK_HG_LISTEN};
    struct epoll_event wake_event = {.events = EPOLLIN, .data.u64 = PK_HG_WAKE};
    if (s->listen_fd < 0 || s->epfd < 0 || s->wakefd < 0 || s->donefd < 0 ||
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(s->listen_fd, (struct sockaddr *)&address, address_len) < 0 ||
        listen(s->listen_fd, 512) < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &listen_event) < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &wake_event) < 0) {
      error = errno;
    }
  }
  if (error == 0) {
    address_len = sizeof address;
    if (getsockname(s->listen_fd, (struct sockaddr *)&address, &address_len) < 0) error = errno;
  }
  if (error == 0) error = pthread_create(&s->thread, NULL, pk_hg_loop, s);
  if (error != 0) {
    pk_hg_free(s);
    return -error;
  }
  *out_handle = (uint64_t)(uintptr_t)s;
  return ntohs(address.ss_family == AF_INET ? ((struct sockaddr_in *)&address)->sin_port
                                            : ((struct sockaddr_in6 *)&address)->sin6_port);
}

// Registers a ticket: bytes [start, end) of the memfd `fd` (reopened here) of
// `size` bytes, sent with status 206 (`partial` PK_HG_PARTIAL, with
// Content-Range; PK_HG_PARTIAL_OPEN, its total `*`) or 200 and the header lines `head` (each ending in CRLF, without length, range
// and connection), by the connection whose answer from the Deno server
// names it. Writes its number (for the `Packice-Ticket` header) to
// *out_ticket; pk_hg_done reports it once its last byte left or its
// connection ended, unless pk_hg_cancel took it back first.
PK_EXPORT int32_t pk_hg_ticket(void *handle, int32_t fd, uint64_t size, uint64_t start,
                               uint64_t end, int32_t partial, const char *head,
                               uint32_t head_len, uint64_t *out_ticket) {
  struct pk_hg *s = handle;
  if (start >= end || end > size || head_len > PK_HG_HEAD_LINES_MAX || partial < PK_HG_WHOLE ||
      partial > PK_HG_PARTIAL_OPEN) {
    return -EINVAL;
  }
  struct pk_hg_object *o = calloc(1, sizeof *o);
  if (o == NULL) return -ENOMEM;
  o->head = malloc(head_len + 1);
  o->fd = pk_hg_read_only(fd, &o->writable);
  if (o->head == NULL || o->fd < 0) {
    int error = o->fd < 0 ? errno : ENOMEM;
    if (o->fd >= 0) close(o->fd);
    free(o->head);
    free(o);
    return -error;
  }
  memcpy(o->head, head, head_len);
  o->head_len = head_len;
  o->size = size;
  o->start = start;
  o->end = end;
  o->partial = partial;
  o->refs = 1;
  pthread_mutex_lock(&s->lock);
  // Room in `done` for every live ticket beside those done and not yet
  // collected (pk_hg_done), so that reporting one never fails.
  if (s->done_len + s->live_tickets + 1 > s->done_cap) {
    size_t cap = s->done_cap == 0 ? 64 : 2 * s->done_cap;
    uint64_t *grown = realloc(s->done, cap * sizeof *grown);
    if (grown == NULL) {
      pthread_mutex_unlock(&s->lock);
      close(o->fd);
      free(o->head);
      free(o);
      return -ENOMEM;
    }
    s->done = grown;
    s->done_cap = cap;
  }
  s->live_tickets++;
  o->ticket = ++s->next_ticket;
  o->next_ticket = s->tickets;
  s->tickets = o;
  *out_ticket = o->ticket;
  pthread_mutex_unlock(&s->lock);
  return 0;
}

// Takes back a ticket no connection has claimed: returns 1 (it will not be
// reported done), else 0 (claimed: pk_hg_done reports it).
PK_EXPORT int32_t pk_hg_cancel(void *handle, uint64_t ticket) {
  struct pk_hg *s = handle;
  struct pk_hg_object *o = pk_hg_claim(s, ticket);
  if (o == NULL) return 0;
  pthread_mutex_lock(&s->lock);
  o->ticket = 0;
  s->live_tickets--;
  pthread_mutex_unlock(&s->lock);
  pk_hg_unref(s, o);
  return 1;
}

// Writes at most `max` tickets done since the last call; returns how many.
PK_EXPORT int32_t pk_hg_done(void *handle, uint64_t *out, int32_t max) {
  struct pk_hg *s = handle;
  if (max <= 0) return -EINVAL;
  pthread_mutex_lock(&s->lock);
  int count = 0;
  while (count < max && s->done_len > 0) out[count++] = s->done[--s->done_len];
  pthread_mutex_unlock(&s->lock);
  return count;
}

// Waits (on Deno's thread pool) until a ticket is done, pk_hg_wake_done is
// called, or `timeout_ms` pass; returns 1 when woken, 0 on the timeout.
PK_EXPORT int32_t pk_hg_wait_done(void *handle, int32_t timeout_ms) {
  struct pk_hg *s = handle;
  struct pollfd p = {.fd = s->donefd, .events = POLLIN};
  int n = poll(&p, 1, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  if (n == 0) return 0;
  uint64_t value;
  if (read(s->donefd, &value, sizeof value) < 0 && errno != EAGAIN) return -errno;
  return 1;
}

// Wakes a pk_hg_wait_done under way.
PK_EXPORT int32_t pk_hg_wake_done(void *handle) {
  struct pk_hg *s = handle;
  uint64_t one = 1;
  return write(s->donefd, &one, sizeof one) < 0 ? -errno : 0;
}

// Writes the requests answered here, the connections handed to the Deno
// server, the body bytes sent, the ranges of relays answered here, and
// those of them under way.
PK_EXPORT int32_t pk_hg_counts(void *handle, uint64_t *out) {
  struct pk_hg *s = handle;
  out[0] = atomic_load(&s->served);
  out[1] = atomic_load(&s->relayed);
  out[2] = atomic_load(&s->bytes);
  out[3] = atomic_load(&s->relay_served);
  out[4] = atomic_load(&s->relay_bodies);
  return 0;
}

// Stops the thread, closes every connection (responses under way are cut)
// and the listener, and frees the table.
PK_EXPORT int32_t pk_hg_close(void *handle) {
  struct pk_hg *s = handle;
  atomic_store(&s->stop, 1);
  uint64_t one = 1;
  if (write(s->wakefd, &one, sizeof one) < 0) { /* a pending wake-up is enough */ }
  int error = pthread_join(s->thread, NULL);
  if (error != 0) return -error;
  pk_hg_free(s);
  return 0;
}

// ===========================================================================
// 12. Unix-socket fast path: gets of sealed objects answered in C
// ===========================================================================
//
// The Unix-socket server (transport/uds/fast_opens.ts) registers here the
// sealed objects it has served once: id, a dup of their memfd, size and
// their info as JSON. pk_fp_recv reads a client's message and answers its
// OPEN frames (READ leases, with a TTL or not) of registered objects itself,
// granting a lease of its own ("n" + this table's random prefix + slot and
// generation: never a UUID, as the peer's are), and ends the one-way
// RELEASEs of those leases; it hands every other frame to JS unread, in its
// order, so every refusal stays the server's typed error.
//
// JS keeps the peer's reader counts right: each lease granted here is a
// reader of its object's incarnation in the peer, reported as events (the
// change in readers and the reads of an object, and its slot freed) that JS
// drains after every call that may change them. A removed object (deleted, evicted, expired) leaves lookups at
// once; its memfd is closed once its last lease here ends.
//
// One mutex guards the table, so that a call may come from any thread.

// The most bytes of an object's info kept to answer with.
#define PK_FP_MAX_INFO 8192
// Replies gathered before they are sent, per call.
#define PK_FP_REPLY_CAP (64 * 1024)
// "n" + 8 hex (prefix) + "-" + 6 hex (lease slot) + 8 hex (generation)
#define PK_FP_LEASE_LEN 24
#define PK_FP_PREFIX_LEN 10
#define PK_FP_MAX_LEASES (1u << 24)
#define PK_FP_NONE UINT32_MAX
// Room for the info of an object put here (section 13).
#define PK_FP_PUT_INFO_MAX 256
// Event flag of pk_fp_drain.
#define PK_FP_FREED 1

// Frame layout (transport/uds/protocol.ts and open_frame.ts).
#define PK_FRAME_HEADER 16
#define PK_OP_RELEASE 4
#define PK_OP_PUT 12
#define PK_OP_DELETE 16
#define PK_OP_OPEN 13
#define PK_FLAG_REPLY 1
#define PK_FLAG_ONE_WAY 4
// A PUT whose client reads the compact reply (transport/uds/protocol.ts Flag.COMPACT).
#define PK_FLAG_COMPACT 16
#define PK_OPEN_REQUEST_FIXED 13
#define PK_OPEN_REPLY_FIXED 14
#define PK_OPEN_TTL 1
#define PK_OPEN_REPLY_INFO 1
#define PK_OPEN_REPLY_EXPIRES 2

struct pk_fp_entry {
  uint8_t *id;
  uint32_t id_len;
  int fd;  // our memfd (a dup of JS's, or made here for an object put here); -1 when none
  uint8_t *bytes;  // an object put here: its bytes, until the entry is freed; NULL otherwise
  uint64_t size;
  uint8_t *info;
  uint32_t info_len;
  double expires_at;  // the object's deadline, epoch ms; 0: none
  double created_at;  // an object put here: when, epoch ms
  uint32_t serial;
  uint32_t readers;   // leases granted here and not ended
  uint32_t reported;  // readers JS counts in the peer
  uint32_t hits;      // reads since the last drain
  uint32_t next_free; // in the free list of entry slots
  uint8_t live;       // the slot is in use
  uint8_t removed;    // out of lookups
  uint8_t dirty;      // in the dirty list
  uint8_t held;       // an object put here whose bytes JS still holds (pk_fp_unhold ends it)
};

struct pk_fp_lease {
  uint32_t gen;
  uint32_t entry;  // entry slot
  struct pk_fp_conn *conn;  // NULL when free
  double expires_at;  // 0: none
  double ttl;         // what a renew without one gives again; 0: none
  uint32_t prev, next;  // in the connection's list; next links the free list
};

struct pk_fp {
  pthread_mutex_t lock;
  struct pk_fp_entry *entries;
  uint32_t entry_cap;
  // Open addressing: the id's hash (low 32 bits) << 32 | entry slot + 1; 0 empty.
  // Probes compare hashes first, and touch an entry only when they match.
  uint64_t *index;
  uint32_t index_cap;
  uint32_t indexed;
  struct pk_fp_lease *leases;
  uint32_t lease_cap;
  uint32_t lease_used;  // slots ever handed out
  uint32_t free_lease;
  uint32_t *dirty;
  uint32_t dirty_len, dirty_cap;
  uint32_t next_serial;
  uint32_t conns;
  char prefix[PK_FP_PREFIX_LEN + 1];
  uint32_t entry_used;  // entry slots ever handed out
  uint32_t free_entry;  // first free entry slot, or PK_FP_NONE
  // Small puts answered here (section 13).
  uint64_t budget;      // bytes new objects may still take, lent by JS
  uint32_t *puts;       // slots of objects put here that JS has not taken yet
  uint32_t puts_len, puts_cap;
  uint32_t *deleted;    // slots of objects put here deleted here, JS has not been told yet
  uint32_t deleted_len, deleted_cap;
  uint8_t deletes;      // DELETEs of objects put here are answered here
  struct pk_slab *slab; // the memory of objects put here
  uint32_t held;        // entries whose bytes JS holds
  uint32_t memfds;      // memfds made here for OPENs of objects put here
  uint32_t max_memfds;  // the most of them, set by JS
  uint8_t closing;      // pk_fp_close has run: freed once JS holds no bytes
  uint8_t random[4096];
  uint32_t random_at;
};

struct pk_fp_conn {
  struct pk_fp *fp;
  int fd;
  uint32_t first;  // first lease of this connection
  uint8_t reply[PK_FP_REPLY_CAP];
  int32_t reply_fds[PK_MAX_FDS];
};

static uint64_t pk_fp_hash(const uint8_t *bytes, uint32_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (uint32_t i = 0; i < len; i++) h = (h ^ bytes[i]) * 1099511628211ULL;
  return h;
}

// The entry slot of `id` in lookups, or PK_FP_NONE.
static uint32_t pk_fp_find(struct pk_fp *fp, const uint8_t *id, uint32_t len) {
  if (fp->index_cap == 0) return PK_FP_NONE;
  uint32_t mask = fp->index_cap - 1;
  uint32_t hash = (uint32_t)pk_fp_hash(id, len);
  for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
    uint64_t at = fp->index[i];
    if (at == 0) return PK_FP_NONE;
    if ((uint32_t)(at >> 32) != hash) continue;
    struct pk_fp_entry *e = &fp->entries[(uint32_t)at - 1];
    if (e->id_len == len && memcmp(e->id, id, len) == 0) return (uint32_t)at - 1;
  }
}

// Puts `value` (hash << 32 | slot + 1) in the first free place from its home.
static void pk_fp_index_place(uint64_t *index, uint32_t mask, uint64_t value) {
  uint32_t i = (uint32_t)(value >> 32) & mask;
  while (index[i] != 0) i = (i + 1) & mask;
  index[i] = value;
}

static int pk_fp_index_add(struct pk_fp *fp, uint32_t slot) {
  if ((fp->indexed + 1) * 2 > fp->index_cap) {
    uint32_t cap = fp->index_cap == 0 ? 64 : fp->index_cap * 2;
    uint64_t *index = calloc(cap, sizeof *index);
    if (index == NULL) return -ENOMEM;
    for (uint32_t i = 0; i < fp->index_cap; i++) {
      if (fp->index[i] != 0) pk_fp_index_place(index, cap - 1, fp->index[i]);
    }
    free(fp->index);
    fp->index = index;
    fp->index_cap = cap;
  }
  struct pk_fp_entry *e = &fp->entries[slot];
  uint64_t hash = (uint32_t)pk_fp_hash(e->id, e->id_len);
  pk_fp_index_place(fp->index, fp->index_cap - 1, hash << 32 | (slot + 1));
  fp->indexed++;
  return 0;
}

// Takes `slot` out of lookups (linear probing, backward-shift deletion).
static void pk_fp_index_remove(struct pk_fp *fp, uint32_t slot) {
  struct pk_fp_entry *e = &fp->entries[slot];
  uint32_t mask = fp->index_cap - 1;
  uint32_t i = (uint32_t)pk_fp_hash(e->id, e->id_len) & mask;
  while ((uint32_t)fp->index[i] != slot + 1) {
    if (fp->index[i] == 0) return;
    i = (i + 1) & mask;
  }
  fp->index[i] = 0;
  fp->indexed--;
  for (uint32_t j = (i + 1) & mask; fp->index[j] != 0; j = (j + 1) & mask) {
    uint32_t home = (uint32_t)(fp->index[j] >> 32) & mask;
    // Move it into the hole unless its home lies in (i, j].
    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
      fp->index[i] = fp->index[j];
      fp->index[j] = 0;
      i = j;
    }
  }
}

static void pk_fp_mark(struct pk_fp *fp, uint32_t slot) {
  struct pk_fp_entry *e = &fp->entries[slot];
  if (e->dirty) return;
  if (fp->dirty_len == fp->dirty_cap) {
    uint32_t cap = fp->dirty_cap == 0 ? 64 : fp->dirty_cap * 2;
    uint32_t *dirty = realloc(fp->dirty, cap * sizeof *dirty);
    // Out of memory: the entry is reported with the next one marked.
    if (dirty == NULL) return;
    fp->dirty = dirty;
    fp->dirty_cap = cap;
  }
  e->dirty = 1;
  fp->dirty[fp->dirty_len++] = slot;
}

struct pk_slab;
static void pk_slab_free(struct pk_slab *slab, void *chunk, uint64_t size);
static void pk_slab_destroy(struct pk_slab *slab);

// Frees entry `slot` and puts it on the free list. Locked.
static void pk_fp_entry_free(struct pk_fp *fp, uint32_t slot) {
  struct pk_fp_entry *e = &fp->entries[slot];
  if (e->fd >= 0) close(e->fd);
  if (e->bytes != NULL) {
    if (e->fd >= 0) fp->memfds--;
    pk_slab_free(fp->slab, e->bytes, e->size);
    pk_slab_free(fp->slab, e->id, e->id_len);
  } else {
    free(e->id);
    free(e->info);
  }
  memset(e, 0, sizeof *e);
  e->fd = -1;
  e->next_free = fp->free_entry;
  fp->free_entry = slot;
}

// A free entry slot, or PK_FP_NONE when out of room. Locked.
static uint32_t pk_fp_entry_new(struct pk_fp *fp) {
  uint32_t slot = fp->free_entry;
  if (slot != PK_FP_NONE) {
    fp->free_entry = fp->entries[slot].next_free;
    return slot;
  }
  if (fp->entry_used == PK_FP_MAX_LEASES) return PK_FP_NONE;
  if (fp->entry_used == fp->entry_cap) {
    uint32_t cap = fp->entry_cap == 0 ? 64 : fp->entry_cap * 2;
    struct pk_fp_entry *entries = realloc(fp->entries, cap * sizeof *entries);
    if (entries == NULL) return PK_FP_NONE;
    for (uint32_t i = fp->entry_cap; i < cap; i++) {
      memset(&entries[i], 0, sizeof entries[i]);
      entries[i].fd = -1;
    }
    fp->entries = entries;
    fp->entry_cap = cap;
  }
  return fp->entry_used++;
}

// Whether entry `e` may be freed: out of lookups, read by no lease here, with
// nothing left to report, and its bytes not held by JS.
static int pk_fp_entry_done(const struct pk_fp_entry *e) {
  return e->removed && e->readers == 0 && e->reported == 0 && !e->dirty && !e->held;
}

PK_EXPORT int32_t pk_fp_create(uint64_t *out_handle) {
  struct pk_fp *fp = calloc(1, sizeof *fp);
  if (fp == NULL) return -ENOMEM;
  pthread_mutex_init(&fp->lock, NULL);
  fp->free_lease = PK_FP_NONE;
  fp->free_entry = PK_FP_NONE;
  fp->random_at = sizeof fp->random;
  uint32_t random;
  if (getrandom(&random, sizeof random, 0) != sizeof random) {
    random = (uint32_t)time(NULL) ^ (uint32_t)getpid();
  }
  snprintf(fp->prefix, sizeof fp->prefix, "n%08x-", random);
  *out_handle = (uint64_t)(uintptr_t)fp;
  return 0;
}

// Takes a new entry for `id` (not in lookups yet) and puts it in lookups,
// with a new serial; its id is a copy in `kept_id`, or in memory of its own
// when NULL. Returns the slot, or -errno: -EEXIST when the id is in lookups,
// -ENOMEM. Locked.
static int64_t pk_fp_entry_add(struct pk_fp *fp, const uint8_t *id, uint32_t id_len,
                               uint8_t *kept_id) {
  if (pk_fp_find(fp, id, id_len) != PK_FP_NONE) return -EEXIST;
  uint32_t slot = pk_fp_entry_new(fp);
  if (slot == PK_FP_NONE) return -ENOMEM;
  struct pk_fp_entry *e = &fp->entries[slot];
  e->id = kept_id != NULL ? kept_id : malloc(id_len);
  if (e->id == NULL) {
    pk_fp_entry_free(fp, slot);
    return -ENOMEM;
  }
  memcpy(e->id, id, id_len);
  e->id_len = id_len;
  e->live = 1;
  if (pk_fp_index_add(fp, slot) < 0) {
    if (kept_id != NULL) e->id = NULL;  // the caller's to free
    pk_fp_entry_free(fp, slot);
    return -ENOMEM;
  }
  fp->next_serial = (fp->next_serial + 1) & 0x7fffffff;
  // The high bit keeps these serials apart from those the server's JS hands out.
  e->serial = 0x80000000u | fp->next_serial;
  return slot;
}

// Registers a sealed object: its id, a dup of `fd`, its size, info JSON and
// deadline (epoch ms, 0 for none), in a slot this table picks, written to
// `out_slot` (events name it). Returns the low 31 bits of the serial its
// OPEN replies name (the high bit is set); -EEXIST when the id is in
// lookups, -E2BIG when the info is too long to answer with.
PK_EXPORT int32_t pk_fp_put(void *handle, const uint8_t *id, uint32_t id_len, int32_t fd,
                            uint64_t size, const uint8_t *info, uint32_t info_len,
                            double expires_at, uint32_t *out_slot) {
  struct pk_fp *fp = handle;
  if (id_len == 0 || id_len > 1024) return -EINVAL;
  if (info_len > PK_FP_MAX_INFO) return -E2BIG;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -errno;
  uint8_t *kept = malloc(info_len == 0 ? 1 : info_len);
  if (kept == NULL) {
    close(copy);
    return -ENOMEM;
  }
  memcpy(kept, info, info_len);
  pthread_mutex_lock(&fp->lock);
  int64_t slot = fp->closing ? -EBUSY : pk_fp_entry_add(fp, id, id_len, NULL);
  int32_t result;
  if (slot < 0) {
    close(copy);
    free(kept);
    result = (int32_t)slot;
  } else {
    struct pk_fp_entry *e = &fp->entries[slot];
    e->info = kept;
    e->info_len = info_len;
    e->fd = copy;
    e->size = size;
    e->expires_at = expires_at;
    *out_slot = (uint32_t)slot;
    result = (int32_t)(e->serial & 0x7fffffff);
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// Takes the object in `slot` out of lookups. Returns 1 when it is freed at
// once (no lease here reads it, JS holds none of its bytes: JS forgets the
// slot), 0 when it is freed later (a drain or pk_fp_unhold tells), -ENOENT
// for a free slot or one out of lookups already.
PK_EXPORT int32_t pk_fp_remove(void *handle, uint32_t slot) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  int32_t result;
  if (slot >= fp->entry_cap || !fp->entries[slot].live || fp->entries[slot].removed) {
    result = -ENOENT;
  } else {
    struct pk_fp_entry *e = &fp->entries[slot];
    pk_fp_index_remove(fp, slot);
    e->removed = 1;
    if (pk_fp_entry_done(e)) {
      pk_fp_entry_free(fp, slot);
      result = 1;
    } else {
      if (e->readers != 0 || e->reported != 0) pk_fp_mark(fp, slot);
      result = 0;
    }
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// Writes an event (slot, change in readers as int32, reads, flags) for each
// entry changed since the last drain, at most `max`; returns how many. Frees
// removed entries that no lease reads and JS holds no bytes of (flag PK_FP_FREED).
PK_EXPORT int32_t pk_fp_drain(void *handle, uint32_t *out, int32_t max) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  int32_t count = 0;
  while (fp->dirty_len > 0 && count < max) {
    uint32_t slot = fp->dirty[--fp->dirty_len];
    struct pk_fp_entry *e = &fp->entries[slot];
    e->dirty = 0;
    uint32_t *event = out + 4 * count;
    event[0] = slot;
    event[1] = e->readers - e->reported;
    event[2] = e->hits;
    event[3] = 0;
    e->reported = e->readers;
    e->hits = 0;
    if (pk_fp_entry_done(e)) {
      pk_fp_entry_free(fp, slot);
      event[3] = PK_FP_FREED;
    }
    count++;
  }
  pthread_mutex_unlock(&fp->lock);
  return count;
}

static void pk_fp_destroy(struct pk_fp *fp) {
  for (uint32_t i = 0; i < fp->entry_used; i++) {
    if (fp->entries[i].live) pk_fp_entry_free(fp, i);
  }
  free(fp->entries);
  free(fp->index);
  free(fp->leases);
  free(fp->dirty);
  free(fp->puts);
  free(fp->deleted);
  pk_slab_destroy(fp->slab);
  pthread_mutex_destroy(&fp->lock);
  free(fp);
}

// Stops answering: every object leaves lookups, and no object is put here
// any more. Every connection must be closed first. The table is freed (its
// memfds closed) at once, or once JS holds the bytes of no object put here
// (pk_fp_unhold).
PK_EXPORT int32_t pk_fp_close(void *handle) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  if (fp->conns != 0 || fp->closing) {
    pthread_mutex_unlock(&fp->lock);
    return -EBUSY;
  }
  fp->closing = 1;
  fp->budget = 0;
  for (uint32_t i = 0; i < fp->entry_used; i++) {
    struct pk_fp_entry *e = &fp->entries[i];
    if (!e->live) continue;
    e->removed = 1;
    if (!e->held) pk_fp_entry_free(fp, i);
  }
  uint32_t held = fp->held;
  pthread_mutex_unlock(&fp->lock);
  if (held == 0) pk_fp_destroy(fp);
  return 0;
}

PK_EXPORT int32_t pk_fp_conn_open(void *handle, int32_t fd, uint64_t *out_conn) {
  struct pk_fp *fp = handle;
  struct pk_fp_conn *c = malloc(sizeof *c);
  if (c == NULL) return -ENOMEM;
  c->fp = fp;
  c->fd = fd;
  c->first = PK_FP_NONE;
  pthread_mutex_lock(&fp->lock);
  int closing = fp->closing;
  if (!closing) fp->conns++;
  pthread_mutex_unlock(&fp->lock);
  if (closing) {
    free(c);
    return -EBUSY;
  }
  *out_conn = (uint64_t)(uintptr_t)c;
  return 0;
}

// A new lease of `c` on entry `slot`, or PK_FP_NONE when out of room. Locked.
static uint32_t pk_fp_lease_new(struct pk_fp *fp, struct pk_fp_conn *c, uint32_t slot) {
  uint32_t at = fp->free_lease;
  if (at != PK_FP_NONE) {
    fp->free_lease = fp->leases[at].next;
  } else {
    if (fp->lease_used == PK_FP_MAX_LEASES) return PK_FP_NONE;
    if (fp->lease_used == fp->lease_cap) {
      uint32_t cap = fp->lease_cap == 0 ? 256 : fp->lease_cap * 2;
      struct pk_fp_lease *leases = realloc(fp->leases, cap * sizeof *leases);
      if (leases == NULL) return PK_FP_NONE;
      fp->leases = leases;
      fp->lease_cap = cap;
    }
    at = fp->lease_used++;
    fp->leases[at].gen = 0;
  }
  struct pk_fp_lease *l = &fp->leases[at];
  l->gen++;
  l->entry = slot;
  l->conn = c;
  l->expires_at = 0;
  l->ttl = 0;
  l->prev = PK_FP_NONE;
  l->next = c->first;
  if (c->first != PK_FP_NONE) fp->leases[c->first].prev = at;
  c->first = at;
  struct pk_fp_entry *e = &fp->entries[slot];
  e->readers++;
  e->hits++;
  pk_fp_mark(fp, slot);
  return at;
}

// Ends lease `at`. Locked.
static void pk_fp_lease_end(struct pk_fp *fp, uint32_t at) {
  struct pk_fp_lease *l = &fp->leases[at];
  struct pk_fp_conn *c = l->conn;
  if (l->prev != PK_FP_NONE) fp->leases[l->prev].next = l->next;
  else c->first = l->next;
  if (l->next != PK_FP_NONE) fp->leases[l->next].prev = l->prev;
  l->conn = NULL;
  l->next = fp->free_lease;
  fp->free_lease = at;
  fp->entries[l->entry].readers--;
  pk_fp_mark(fp, l->entry);
}

static int pk_fp_hex(const uint8_t *text, int len, uint32_t *out) {
  uint32_t value = 0;
  for (int i = 0; i < len; i++) {
    uint8_t ch = text[i];
    uint32_t digit;
    if (ch >= '0' && ch <= '9') digit = ch - '0';
    else if (ch >= 'a' && ch <= 'f') digit = ch - 'a' + 10;
    else return 0;
    value = value << 4 | digit;
  }
  *out = value;
  return 1;
}

// The lease of `c` that `id` names, or PK_FP_NONE. Locked.
static uint32_t pk_fp_lease_of(struct pk_fp *fp, struct pk_fp_conn *c, const uint8_t *id,
                               uint32_t len) {
  uint32_t at, gen;
  if (len != PK_FP_LEASE_LEN || memcmp(id, fp->prefix, PK_FP_PREFIX_LEN) != 0 ||
      !pk_fp_hex(id + PK_FP_PREFIX_LEN, 6, &at) || !pk_fp_hex(id + PK_FP_PREFIX_LEN + 6, 8, &gen) ||
      at >= fp->lease_used) {
    return PK_FP_NONE;
  }
  struct pk_fp_lease *l = &fp->leases[at];
  return l->conn == c && l->gen == gen ? at : PK_FP_NONE;
}

// Whether `id` has the form of this table's lease ids.
static int pk_fp_is_ours(struct pk_fp *fp, const uint8_t *id, uint32_t len) {
  return len == PK_FP_LEASE_LEN && memcmp(id, fp->prefix, PK_FP_PREFIX_LEN) == 0;
}

// Ends every lease of the connection and frees it.
PK_EXPORT int32_t pk_fp_conn_close(void *conn) {
  struct pk_fp_conn *c = conn;
  struct pk_fp *fp = c->fp;
  pthread_mutex_lock(&fp->lock);
  while (c->first != PK_FP_NONE) pk_fp_lease_end(fp, c->first);
  fp->conns--;
  pthread_mutex_unlock(&fp->lock);
  free(c);
  return 0;
}

// Ends a lease of the connection granted here: 0, -ENOENT when it names
// none (never granted here, or ended), -ETIMEDOUT when it had expired (it ends).
PK_EXPORT int32_t pk_fp_release(void *conn, const uint8_t *id, uint32_t len, double now) {
  struct pk_fp_conn *c = conn;
  struct pk_fp *fp = c->fp;
  pthread_mutex_lock(&fp->lock);
  uint32_t at = pk_fp_lease_of(fp, c, id, len);
  int32_t result = 0;
  if (at == PK_FP_NONE) {
    result = -ENOENT;
  } else {
    double expires = fp->leases[at].expires_at;
    pk_fp_lease_end(fp, at);
    if (expires != 0 && expires <= now) result = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// Whether a lease of the connection was granted here and holds: 0 when it
// does, -ENOENT when it names none, -ETIMEDOUT when it has expired (it ends).
PK_EXPORT int32_t pk_fp_holds(void *conn, const uint8_t *id, uint32_t len, double now) {
  struct pk_fp_conn *c = conn;
  struct pk_fp *fp = c->fp;
  pthread_mutex_lock(&fp->lock);
  uint32_t at = pk_fp_lease_of(fp, c, id, len);
  int32_t result = 0;
  if (at == PK_FP_NONE) {
    result = -ENOENT;
  } else if (fp->leases[at].expires_at != 0 && fp->leases[at].expires_at <= now) {
    pk_fp_lease_end(fp, at);
    result = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// Gives a lease of the connection granted here a deadline of now + ttl (ms),
// or its own TTL again when `ttl` is 0, writes the TTL into `out_ttl` and its
// object's id into `out_id` (at most `cap` bytes). Returns the id's length;
// -ENOENT when the lease names none, -ETIMEDOUT when it has expired (it
// ends), -EINVAL when it has no TTL and none was given, -ENOSPC when the id
// does not fit.
PK_EXPORT int32_t pk_fp_renew(void *conn, const uint8_t *id, uint32_t len, double ttl,
                              double now, uint8_t *out_id, uint32_t cap, double *out_ttl) {
  struct pk_fp_conn *c = conn;
  struct pk_fp *fp = c->fp;
  pthread_mutex_lock(&fp->lock);
  uint32_t at = pk_fp_lease_of(fp, c, id, len);
  int32_t result;
  if (at == PK_FP_NONE) {
    result = -ENOENT;
  } else if (fp->leases[at].expires_at != 0 && fp->leases[at].expires_at <= now) {
    pk_fp_lease_end(fp, at);
    result = -ETIMEDOUT;
  } else {
    struct pk_fp_lease *l = &fp->leases[at];
    struct pk_fp_entry *e = &fp->entries[l->entry];
    double next = ttl > 0 ? ttl : l->ttl;
    if (next <= 0) {
      result = -EINVAL;
    } else if (e->id_len > cap) {
      result = -ENOSPC;
    } else {
      l->ttl = next;
      l->expires_at = now + next;
      memcpy(out_id, e->id, e->id_len);
      *out_ttl = next;
      result = (int32_t)e->id_len;
    }
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// Ends every lease whose deadline (its TTL, or a renew) has come; returns how many.
PK_EXPORT int32_t pk_fp_expire(void *handle, double now) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  int32_t count = 0;
  for (uint32_t at = 0; at < fp->lease_used; at++) {
    struct pk_fp_lease *l = &fp->leases[at];
    if (l->conn != NULL && l->expires_at != 0 && l->expires_at <= now) {
      pk_fp_lease_end(fp, at);
      count++;
    }
  }
  pthread_mutex_unlock(&fp->lock);
  return count;
}

// Sends the replies gathered in `c` as one message; on a full socket copies
// them to `spill`, with dups of their fds in `spill_fds`, for JS to queue.
// Returns 0, or -errno when they could not be kept (the caller's connection
// must end: leases were granted that no reply tells of). Locked.
static int32_t pk_fp_flush(struct pk_fp_conn *c, uint32_t len, uint32_t nfds, uint8_t *spill,
                           int32_t *spill_fds, double *out) {
  if (len == 0) return 0;
  int64_t sent = pk_sendmsg(c->fd, c->reply, len, c->reply_fds, nfds);
  if (sent >= 0) {
    out[6] += (double)sent;
    return 0;
  }
  if (sent != -EAGAIN) return (int32_t)sent;
  for (uint32_t i = 0; i < nfds; i++) {
    int copy = fcntl(c->reply_fds[i], F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      int error = errno;
      for (uint32_t j = 0; j < i; j++) close(spill_fds[j]);
      return -error;
    }
    spill_fds[i] = copy;
  }
  memcpy(spill, c->reply, len);
  out[7] = len;
  out[8] = nfds;
  return 0;
}

static void pk_fp_header(uint8_t *frame, uint8_t op, uint32_t id, uint8_t flags, uint32_t length,
                         uint8_t fds) {
  frame[0] = 0x50;
  frame[1] = 0x4b;
  frame[2] = 1;
  frame[3] = op;
  memcpy(frame + 4, &id, 4);
  memcpy(frame + 8, &length, 4);
  frame[12] = flags;
  frame[13] = fds;
  frame[14] = frame[15] = 0;
}

static int64_t pk_fp_put_here(struct pk_fp *fp, uint32_t request, uint32_t flags,
                              const uint8_t *body, uint32_t body_len, double now,
                              uint8_t *reply, uint32_t room, uint64_t *out_size);
static int32_t pk_fp_memfd_here(struct pk_fp *fp, struct pk_fp_entry *e, int limited);
static uint32_t pk_fp_put_info(const struct pk_fp_entry *e, uint8_t *out);
static int64_t pk_fp_delete_here(struct pk_fp *fp, uint32_t request, const uint8_t *body,
                                 uint32_t body_len, uint8_t *reply, uint32_t room);
static int64_t pk_fp_recv_in(struct pk_fp_conn *c, uint8_t *buf, uint64_t cap, int32_t *fds_out,
                             uint32_t max_fds, int32_t *out_nfds, int32_t *out_flags, double now,
                             uint8_t *spill, int32_t *spill_fds, double *out);

// Receives one message of the connection, as pk_recvmsg does, and answers
// its frames that are OPENs (with a TTL or not) of registered objects, one-way
// RELEASEs of leases granted here and PUTs of plain small objects (section
// 13), as one reply message of at most
// PK_FP_REPLY_CAP bytes. The other frames are JS's, moved to the start of
// `buf` in their order, out[0] bytes of them (pipelined requests have no
// order among them but that of their replies' ids, which stays; a frame past
// a malformed one is JS's, as the malformed one is). A message with fds, or
// cut, is all JS's. `now` is the peer's clock, epoch ms. out[1..8]: OPENs
// answered, their request bytes, RELEASEs ended, their bytes, object bytes
// under the leases granted, bytes sent, bytes and fds of the replies put in
// `spill` (at least PK_FP_REPLY_CAP bytes) and `spill_fds` (PK_MAX_FDS) for
// JS to queue when the socket was full; out[9..11]: PUTs answered, their
// request bytes, their objects' bytes; out[12..13]: DELETEs answered, their
// request bytes. Returns what pk_recvmsg returns, or
// -errno when the replies could be neither sent nor kept (end the
// connection: its leases end with it).
PK_EXPORT int64_t pk_fp_recv(void *conn, uint8_t *buf, uint64_t cap, int32_t *fds_out,
                             uint32_t max_fds, int32_t *out_nfds, int32_t *out_flags, double now,
                             uint8_t *spill, int32_t *spill_fds, double *out) {
  for (int i = 0; i < 14; i++) out[i] = 0;
  return pk_fp_recv_in(conn, buf, cap, fds_out, max_fds, out_nfds, out_flags, now, spill,
                       spill_fds, out);
}

// The room lent for puts below which pk_fp_recv_each hands back to JS, which
// lends more: five messages' worth (MAX_MESSAGE in transport/uds/protocol.ts),
// so that no message of a pass finds the room gone and its puts go to JS.
#define PK_FP_EACH_ROOM ((uint64_t)1 << 20)

// pk_fp_recv of one message on each of `count` connections (conns[i], as
// pk_fp_conn_open gave them), in their order, in one call: for a server
// whose JS thread finds many sockets ready at once, where a call per socket
// (and the JS around it) would cost more than C's answers. out[1..13] sum
// the figures of pk_fp_recv over them and out[14] the bytes received of
// those whose message was answered whole here (or that had none: -EAGAIN).
// It stops after the first connection whose message is not (frames left to
// JS, fds, a cut message, its end, an error, replies spilled): out[15] is
// that receive's result, out[16] 1, out[0] and out[7..8] and the buffers as
// pk_fp_recv leaves them; and after any connection once the room lent for
// puts is under PK_FP_EACH_ROOM (out[16] 0). Returns how many connections
// it went through: at least one when `count` > 0.
PK_EXPORT int32_t pk_fp_recv_each(const uint64_t *conns, int32_t count, uint8_t *buf,
                                  uint64_t cap, int32_t *fds_out, uint32_t max_fds,
                                  int32_t *out_nfds, int32_t *out_flags, double now,
                                  uint8_t *spill, int32_t *spill_fds, double *out) {
  for (int i = 0; i < 17; i++) out[i] = 0;
  int32_t done = 0;
  while (done < count) {
    struct pk_fp_conn *c = (struct pk_fp_conn *)(uintptr_t)conns[done++];
    out[0] = out[7] = out[8] = 0;
    *out_nfds = *out_flags = 0;
    int64_t n = pk_fp_recv_in(c, buf, cap, fds_out, max_fds, out_nfds, out_flags, now, spill,
                              spill_fds, out);
    if (n != -EAGAIN && !(n > 0 && out[0] == 0 && out[7] == 0)) {
      out[15] = (double)n;
      out[16] = 1;
      break;
    }
    if (n > 0) out[14] += (double)n;
    pthread_mutex_lock(&c->fp->lock);
    int low = c->fp->budget < PK_FP_EACH_ROOM;
    pthread_mutex_unlock(&c->fp->lock);
    if (low) break;
  }
  return done;
}

// pk_fp_recv, adding its figures to out[1..13] (pk_fp_recv_each sums them).
static int64_t pk_fp_recv_in(struct pk_fp_conn *c, uint8_t *buf, uint64_t cap, int32_t *fds_out,
                             uint32_t max_fds, int32_t *out_nfds, int32_t *out_flags, double now,
                             uint8_t *spill, int32_t *spill_fds, double *out) {
  struct pk_fp *fp = c->fp;
  int64_t n = pk_recvmsg(c->fd, buf, cap, fds_out, max_fds, out_nfds, out_flags);
  if (n > 0) out[0] = (double)n;
  if (n <= 0 || *out_nfds != 0 || *out_flags != 0) return n;
  uint32_t len = 0, nfds = 0;
  uint64_t at = 0;
  // Bytes of the frames left to JS, moved to the start of `buf`.
  uint64_t kept = 0;
  static const char hex[] = "0123456789abcdef";
  pthread_mutex_lock(&fp->lock);
  while ((uint64_t)n - at >= PK_FRAME_HEADER) {
    const uint8_t *frame = buf + at;
    uint32_t request, body_len;
    memcpy(&request, frame + 4, 4);
    memcpy(&body_len, frame + 8, 4);
    if (frame[0] != 0x50 || frame[1] != 0x4b || frame[2] != 1 || frame[13] != 0 ||
        body_len > (uint64_t)n - at - PK_FRAME_HEADER) {
      break;
    }
    const uint8_t *body = frame + PK_FRAME_HEADER;
    uint8_t op = frame[3];
    uint8_t flags = frame[12];
    if (op == PK_OP_RELEASE && flags == PK_FLAG_ONE_WAY && pk_fp_is_ours(fp, body, body_len)) {
      // Not this connection's, or ended: ignored, as the server ignores such a release.
      uint32_t lease = pk_fp_lease_of(fp, c, body, body_len);
      if (lease != PK_FP_NONE) pk_fp_lease_end(fp, lease);
      out[3] += 1;
      out[4] += PK_FRAME_HEADER + body_len;
    } else if (op == PK_OP_OPEN && flags == 0 && body_len > PK_OPEN_REQUEST_FIXED) {
      double ttl = 0;
      if (body[4] & PK_OPEN_TTL) {
        memcpy(&ttl, body + 5, 8);
        // A positive safe integer, as the peer takes; any other is JS's to refuse.
        if (!(ttl >= 1 && ttl <= 9007199254740991.0) || ttl != (double)(int64_t)ttl) goto keep;
      }
      uint32_t slot = pk_fp_find(fp, body + PK_OPEN_REQUEST_FIXED,
                                 body_len - PK_OPEN_REQUEST_FIXED);
      if (slot == PK_FP_NONE) goto keep;
      struct pk_fp_entry *e = &fp->entries[slot];
      if (e->expires_at != 0 && e->expires_at <= now) goto keep;
      if (e->fd < 0 && pk_fp_memfd_here(fp, e, 1) < 0) goto keep;
      uint32_t known;
      memcpy(&known, body, 4);
      int same = known == e->serial;
      uint8_t put_info[PK_FP_PUT_INFO_MAX];
      const uint8_t *info = e->info;
      uint32_t info_len = e->info_len;
      if (!same && e->bytes != NULL) {
        info_len = pk_fp_put_info(e, put_info);
        info = put_info;
      }
      uint32_t room = PK_FRAME_HEADER + PK_OPEN_REPLY_FIXED + PK_FP_LEASE_LEN +
                      (same ? 0 : info_len);
      if (len + room > PK_FP_REPLY_CAP || nfds + 1 > PK_MAX_FDS) goto keep;
      uint32_t lease = pk_fp_lease_new(fp, c, slot);
      if (lease == PK_FP_NONE) goto keep;
      double expires_at = ttl == 0 ? 0 : now + ttl;
      fp->leases[lease].expires_at = expires_at;
      fp->leases[lease].ttl = ttl;
      uint8_t *reply = c->reply + len;
      uint8_t *rb = reply + PK_FRAME_HEADER;
      memcpy(rb, &e->serial, 4);
      rb[4] = (same ? 0 : PK_OPEN_REPLY_INFO) | (ttl == 0 ? 0 : PK_OPEN_REPLY_EXPIRES);
      rb[5] = PK_FP_LEASE_LEN;
      memcpy(rb + 6, &expires_at, 8);
      uint8_t *lease_id = rb + PK_OPEN_REPLY_FIXED;
      memcpy(lease_id, fp->prefix, PK_FP_PREFIX_LEN);
      for (int i = 0; i < 6; i++) lease_id[PK_FP_PREFIX_LEN + i] = hex[(lease >> (20 - 4 * i)) & 15];
      uint32_t gen = fp->leases[lease].gen;
      for (int i = 0; i < 8; i++) {
        lease_id[PK_FP_PREFIX_LEN + 6 + i] = hex[(gen >> (28 - 4 * i)) & 15];
      }
      uint32_t reply_body = PK_OPEN_REPLY_FIXED + PK_FP_LEASE_LEN;
      if (!same) {
        memcpy(rb + reply_body, info, info_len);
        reply_body += info_len;
        c->reply_fds[nfds++] = e->fd;
      }
      pk_fp_header(reply, PK_OP_OPEN, request, PK_FLAG_REPLY, reply_body, same ? 0 : 1);
      len += PK_FRAME_HEADER + reply_body;
      out[1] += 1;
      out[2] += PK_FRAME_HEADER + body_len;
      out[5] += (double)e->size;
    } else if (op == PK_OP_PUT) {
      uint64_t size;
      int64_t put = pk_fp_put_here(fp, request, flags, body, body_len, now, c->reply + len,
                                   PK_FP_REPLY_CAP - len, &size);
      if (put < 0) goto keep;
      len += (uint32_t)put;
      out[9] += 1;
      out[10] += PK_FRAME_HEADER + body_len;
      out[11] += (double)size;
    } else if (op == PK_OP_DELETE && flags == 0) {
      int64_t deleted = pk_fp_delete_here(fp, request, body, body_len, c->reply + len,
                                          PK_FP_REPLY_CAP - len);
      if (deleted < 0) goto keep;
      len += (uint32_t)deleted;
      out[12] += 1;
      out[13] += PK_FRAME_HEADER + body_len;
    } else {
      goto keep;
    }
    at += PK_FRAME_HEADER + body_len;
    continue;
  keep:
    if (kept != at) memmove(buf + kept, buf + at, PK_FRAME_HEADER + body_len);
    kept += PK_FRAME_HEADER + body_len;
    at += PK_FRAME_HEADER + body_len;
  }
  // A malformed frame and what follows it: JS's, as they are.
  if (at < (uint64_t)n) {
    if (kept != at) memmove(buf + kept, buf + at, (uint64_t)n - at);
    kept += (uint64_t)n - at;
  }
  int32_t flushed = pk_fp_flush(c, len, nfds, spill, spill_fds, out);
  pthread_mutex_unlock(&fp->lock);
  out[0] = (double)kept;
  return flushed < 0 ? flushed : n;
}

// ===========================================================================
// 13. Unix-socket small puts answered in C
// ===========================================================================
//
// pk_fp_recv answers PUT frames of plain objects (fields `{}`: no id,
// metadata or TTL) of 1 to PK_FP_PUT_MAX bytes itself, with an object of the
// table of section 12: a fresh UUID v4 id (as crypto.randomUUID gives), its
// bytes copied into memory of its own, sealed from the start (nothing writes
// them again), in lookups at once so that OPENs of it are answered here
// too, and its info JSON as the reply, the same as the server's JS sends.
// Its memfd is made, and sealed for good (F_SEAL_WRITE, F_SEAL_GROW,
// F_SEAL_SHRINK, F_SEAL_SEAL), only when an OPEN or JS first asks for it:
// most small objects never leave the process, and a memfd each would cost
// system calls and one of the process's few file descriptors.
//
// The peer learns of them in batches (pk_fp_take_puts), right after the
// pk_fp_recv that made them, on the same thread: it holds their bytes from
// then on (pk_fp_copy, pk_fp_memfd) until it lets go (pk_fp_unhold), and
// the entry is freed once it has let go, left lookups and no lease reads it.
// Puts take room the peer lent (pk_fp_budget); without room, or for any
// other PUT, the frame is JS's, as before. A DELETE of such an object that
// JS holds is answered here too: it leaves lookups at once, and the peer
// takes it out of its own right after the receive (pk_fp_take_deletes).

#define PK_FP_PUT_MAX (64 * 1024)
#define PK_FP_UUID_LEN 36
// A record of pk_fp_take_puts: slot u32, size u32, created f64, id, serial u32.
#define PK_FP_PUT_RECORD 56

// Writes a fresh UUID v4 into `out`; -1 when the kernel gives no random bytes.
static int pk_fp_uuid(struct pk_fp *fp, uint8_t *out) {
  if (fp->random_at + 16 > sizeof fp->random) {
    size_t got = 0;
    while (got < sizeof fp->random) {
      ssize_t n = getrandom(fp->random + got, sizeof fp->random - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return -1;
      got += (size_t)n;
    }
    fp->random_at = 0;
  }
  uint8_t *r = fp->random + fp->random_at;
  fp->random_at += 16;
  r[6] = (r[6] & 0x0f) | 0x40;
  r[8] = (r[8] & 0x3f) | 0x80;
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[r[i] >> 4];
    out[o++] = hex[r[i] & 15];
  }
  return 0;
}

// The memory of objects put here: chunks in size classes (four per power of
// two, from 64 bytes), carved from regions of 2 MiB faulted in at once
// (MADV_POPULATE_WRITE: a fraction of what faulting page by page costs), and
// kept for the next object of their class when freed: storing an object
// touches no new page once the table has held as much before. Regions go
// back to the kernel once no object is left (pk_fp_trim).
//
// Faulting a region in (zeroing 512 fresh pages) takes most of a millisecond,
// and on the receive it would hold up every connection's puts meanwhile: a
// thread of the slab's own keeps up to PK_SLAB_SPARE regions faulted in ahead,
// in idle time, from the first region taken until the slab is trimmed. The
// receive takes a ready one, and faults one in itself only when none is
// (puts faster than the thread, or no thread). So the memory held beyond the
// objects' chunks is at most the rest of the newest region and the spares.
#define PK_SLAB_REGION ((size_t)2 << 20)
#define PK_SLAB_CLASSES 41
#define PK_SLAB_SPARE 2

struct pk_slab {
  uint8_t *cur, *end;  // the rest of the newest region
  void *free[PK_SLAB_CLASSES];
  void **regions;
  uint32_t regions_len, regions_cap;
  uint64_t used;  // bytes of chunks handed out
  // Regions faulted in ahead by the thread, guarded by `spare_lock` (taken
  // inside the table's lock, never the other way round).
  pthread_mutex_t spare_lock;
  pthread_cond_t spare_wake;
  void *spare[PK_SLAB_SPARE];
  uint32_t spare_len;
  uint32_t want;         // spares the thread keeps ready: 0 until a region is taken, and once trimmed
  uint8_t stop;          // the thread ends
  uint8_t thread_state;  // 0 not started, 1 running, 2 could not start
  pthread_t thread;
  uint64_t faulted_ahead;  // regions the thread faulted in
  uint64_t faulted_here;   // regions the receive had to fault in itself
};

// A new region of PK_SLAB_REGION bytes faulted in, or NULL. With `huge`, on
// a boundary of its size and asked to be one huge page (MADV_HUGEPAGE, where
// transparent huge pages are on for those who ask): one fault that zeroes
// 2 MiB instead of 512, about a quarter of the CPU (measured 0.05-0.25 ms
// against 0.65-0.95 ms), and one TLB entry. Only the slab's thread asks for
// it: a huge page the kernel must first find or make room for can take longer
// than small pages do, and the receive never waits for that.
static void *pk_slab_region_new(int huge) {
  size_t span = huge ? 2 * PK_SLAB_REGION : PK_SLAB_REGION;
  uint8_t *mapped = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return NULL;
  uint8_t *region = mapped;
  if (huge) {
    // Keep the one aligned region inside the double span.
    region = (uint8_t *)(((uintptr_t)mapped + PK_SLAB_REGION - 1) & ~(uintptr_t)(PK_SLAB_REGION - 1));
    if (region > mapped) munmap(mapped, (size_t)(region - mapped));
    size_t tail = (size_t)(mapped + span - (region + PK_SLAB_REGION));
    if (tail > 0) munmap(region + PK_SLAB_REGION, tail);
    // Best effort: without it (THP off, an older kernel) the pages are small.
    madvise(region, PK_SLAB_REGION, MADV_HUGEPAGE);
  }
  // Best effort: without it (an older kernel) pages fault in one by one.
  madvise(region, PK_SLAB_REGION, MADV_POPULATE_WRITE);
  return region;
}

// A huge region that took more CPU than this to fault in cost no less than
// small pages do (0.65-1.5 ms measured): the kernel had to make the room
// (direct compaction of fragmented memory, seen at 6-9 ms a region), so the
// next PK_SLAB_SMALL_RUN regions are small ones before it is asked again.
#define PK_SLAB_HUGE_NS 500000
#define PK_SLAB_SMALL_RUN 64

static int64_t pk_thread_cpu_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void *pk_slab_ahead(void *arg) {
  struct pk_slab *slab = arg;
  uint32_t small_left = 0;  // regions to fault in small before asking for a huge one again
  pthread_mutex_lock(&slab->spare_lock);
  for (;;) {
    while (!slab->stop && slab->spare_len >= slab->want) {
      pthread_cond_wait(&slab->spare_wake, &slab->spare_lock);
    }
    if (slab->stop) break;
    pthread_mutex_unlock(&slab->spare_lock);
    int huge = small_left == 0;
    int64_t spent = pk_thread_cpu_ns();
    void *region = pk_slab_region_new(huge);
    spent = pk_thread_cpu_ns() - spent;
    if (!huge) small_left--;
    else if (spent > PK_SLAB_HUGE_NS) small_left = PK_SLAB_SMALL_RUN;
    pthread_mutex_lock(&slab->spare_lock);
    if (region == NULL) {
      // Out of memory: the receive tries on its own; this thread waits for the next take.
      slab->want = slab->spare_len;
      continue;
    }
    if (slab->stop || slab->spare_len >= slab->want) {
      munmap(region, PK_SLAB_REGION);
      continue;
    }
    slab->spare[slab->spare_len++] = region;
    slab->faulted_ahead++;
  }
  pthread_mutex_unlock(&slab->spare_lock);
  return NULL;
}

static struct pk_slab *pk_slab_new(void) {
  struct pk_slab *slab = calloc(1, sizeof *slab);
  if (slab == NULL) return NULL;
  pthread_mutex_init(&slab->spare_lock, NULL);
  pthread_cond_init(&slab->spare_wake, NULL);
  return slab;
}

// A region for the receive: a spare when one is ready, else one faulted in
// here; the thread is asked to keep spares ready from now on.
static void *pk_slab_region_take(struct pk_slab *slab) {
  void *region = NULL;
  pthread_mutex_lock(&slab->spare_lock);
  if (slab->spare_len > 0) region = slab->spare[--slab->spare_len];
  slab->want = PK_SLAB_SPARE;
  if (slab->thread_state == 0) {
    // The library is pinned, so the thread never returns into unmapped code.
    pk_pin();
    slab->thread_state = pthread_create(&slab->thread, NULL, pk_slab_ahead, slab) == 0 ? 1 : 2;
  }
  pthread_cond_signal(&slab->spare_wake);
  pthread_mutex_unlock(&slab->spare_lock);
  if (region == NULL) {
    region = pk_slab_region_new(0);
    if (region != NULL) slab->faulted_here++;
  }
  return region;
}

// The class of a chunk of `size` bytes (at most 64 KiB) and its size.
static uint32_t pk_slab_class(uint64_t size, uint64_t *class_size) {
  if (size <= 64) {
    *class_size = 64;
    return 0;
  }
  int k = 63 - __builtin_clzll(size - 1);  // 2^k < size <= 2^(k+1), k >= 6
  uint64_t base = (uint64_t)1 << k, step = base / 4;
  uint64_t q = (size - base + step - 1) / step;  // 1..4
  *class_size = base + q * step;
  return (uint32_t)((k - 6) * 4 + q);
}

static void *pk_slab_alloc(struct pk_slab *slab, uint64_t size) {
  uint64_t class_size;
  uint32_t class = pk_slab_class(size, &class_size);
  void *chunk = slab->free[class];
  if (chunk != NULL) {
    memcpy(&slab->free[class], chunk, sizeof chunk);
  } else {
    if ((uint64_t)(slab->end - slab->cur) < class_size) {
      if (slab->regions_len == slab->regions_cap) {
        uint32_t cap = slab->regions_cap == 0 ? 16 : slab->regions_cap * 2;
        void **regions = realloc(slab->regions, cap * sizeof *regions);
        if (regions == NULL) return NULL;
        slab->regions = regions;
        slab->regions_cap = cap;
      }
      uint8_t *region = pk_slab_region_take(slab);
      if (region == NULL) return NULL;
      slab->regions[slab->regions_len++] = region;
      // The rest of the last region is left: at most one chunk of 64 KiB.
      slab->cur = region;
      slab->end = region + PK_SLAB_REGION;
    }
    chunk = slab->cur;
    slab->cur += class_size;
  }
  slab->used += class_size;
  return chunk;
}

static void pk_slab_free(struct pk_slab *slab, void *chunk, uint64_t size) {
  if (chunk == NULL) return;
  uint64_t class_size;
  uint32_t class = pk_slab_class(size, &class_size);
  memcpy(chunk, &slab->free[class], sizeof chunk);
  slab->free[class] = chunk;
  slab->used -= class_size;
}

// Gives the spares back and has the thread keep none until a region is taken again.
static void pk_slab_drop_spares(struct pk_slab *slab) {
  pthread_mutex_lock(&slab->spare_lock);
  slab->want = 0;
  while (slab->spare_len > 0) munmap(slab->spare[--slab->spare_len], PK_SLAB_REGION);
  pthread_mutex_unlock(&slab->spare_lock);
}

// Gives the spares back, and unmaps every region when no chunk is handed out.
static int pk_slab_trim(struct pk_slab *slab) {
  if (slab == NULL) return 0;
  pk_slab_drop_spares(slab);
  if (slab->used != 0 || slab->regions_len == 0) return 0;
  for (uint32_t i = 0; i < slab->regions_len; i++) munmap(slab->regions[i], PK_SLAB_REGION);
  int count = (int)slab->regions_len;
  slab->regions_len = 0;
  slab->cur = slab->end = NULL;
  memset(slab->free, 0, sizeof slab->free);
  return count;
}

static void pk_slab_destroy(struct pk_slab *slab) {
  if (slab == NULL) return;
  pthread_mutex_lock(&slab->spare_lock);
  slab->stop = 1;
  pthread_cond_signal(&slab->spare_wake);
  pthread_mutex_unlock(&slab->spare_lock);
  if (slab->thread_state == 1) pthread_join(slab->thread, NULL);
  pk_slab_drop_spares(slab);
  for (uint32_t i = 0; i < slab->regions_len; i++) munmap(slab->regions[i], PK_SLAB_REGION);
  free(slab->regions);
  pthread_mutex_destroy(&slab->spare_lock);
  pthread_cond_destroy(&slab->spare_wake);
  free(slab);
}

static uint8_t *pk_put_text(uint8_t *at, const char *text) {
  size_t len = strlen(text);
  memcpy(at, text, len);
  return at + len;
}

static uint8_t *pk_put_u64(uint8_t *at, uint64_t value) {
  uint8_t digits[20];
  int n = 0;
  do {
    digits[n++] = (uint8_t)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) *at++ = digits[--n];
  return at;
}

// Writes the info JSON of the object put here in `e` (at most
// PK_FP_PUT_INFO_MAX bytes), with its fields in the order the server's JS
// sends them; returns its length.
static uint32_t pk_fp_put_info(const struct pk_fp_entry *e, uint8_t *out) {
  uint8_t *at = pk_put_text(out, "{\"id\":\"");
  memcpy(at, e->id, e->id_len);
  at = pk_put_text(at + e->id_len, "\",\"state\":\"SEALED\",\"size\":");
  at = pk_put_u64(at, e->size);
  at = pk_put_text(at, ",\"blobSizes\":[");
  at = pk_put_u64(at, e->size);
  at = pk_put_text(at, "],\"meta\":{},\"createdAt\":");
  at = pk_put_u64(at, (uint64_t)e->created_at);
  at = pk_put_text(at, ",\"sealedAt\":");
  at = pk_put_u64(at, (uint64_t)e->created_at);
  *at++ = '}';
  return (uint32_t)(at - out);
}

// Writes the compact PUT reply (transport/uds/protocol.ts writePutReply) of
// the object put here in `e`: marker 0, f64 size, createdAt, sealedAt,
// expiresAt (NaN: none), u16 id length, the id; returns its length.
static uint32_t pk_fp_put_compact(const struct pk_fp_entry *e, uint8_t *out) {
  double fields[4] = {(double)e->size, e->created_at, e->created_at, __builtin_nan("")};
  uint16_t id_len = (uint16_t)e->id_len;
  out[0] = 0;
  memcpy(out + 1, fields, sizeof fields);
  memcpy(out + 33, &id_len, 2);
  memcpy(out + 35, e->id, e->id_len);
  return 35 + e->id_len;
}

// Answers the PUT frame `request` with `body` as an object of this table,
// its reply frame written into `reply` (`room` bytes). Returns the reply's
// length and the object's size in `out_size`; -1 when the frame is JS's.
// Locked.
static int64_t pk_fp_put_here(struct pk_fp *fp, uint32_t request, uint32_t flags,
                              const uint8_t *body, uint32_t body_len, double now,
                              uint8_t *reply, uint32_t room, uint64_t *out_size) {
  uint32_t fields;
  if (body_len < 6 || fp->closing) return -1;
  memcpy(&fields, body, 4);
  if (fields != 2 || body[4] != '{' || body[5] != '}') return -1;
  uint64_t size = body_len - 6;
  if (size == 0 || size > PK_FP_PUT_MAX || size > fp->budget) return -1;
  // The peer's clock in whole milliseconds, as JSON has it from JS; any other is JS's.
  if (!(now >= 0 && now <= 9007199254740991.0) || now != (double)(int64_t)now) return -1;
  if (room < PK_FRAME_HEADER + PK_FP_PUT_INFO_MAX) return -1;
  if (fp->puts_len == fp->puts_cap) {
    uint32_t cap = fp->puts_cap == 0 ? 256 : fp->puts_cap * 2;
    uint32_t *puts = realloc(fp->puts, cap * sizeof *puts);
    if (puts == NULL) return -1;
    fp->puts = puts;
    fp->puts_cap = cap;
  }
  if (fp->slab == NULL && (fp->slab = pk_slab_new()) == NULL) return -1;
  uint8_t id[PK_FP_UUID_LEN];
  if (pk_fp_uuid(fp, id) < 0) return -1;
  uint8_t *bytes = pk_slab_alloc(fp->slab, size);
  uint8_t *kept_id = pk_slab_alloc(fp->slab, PK_FP_UUID_LEN);
  int64_t slot = bytes == NULL || kept_id == NULL
                     ? -ENOMEM
                     : pk_fp_entry_add(fp, id, PK_FP_UUID_LEN, kept_id);
  if (slot < 0) {
    pk_slab_free(fp->slab, bytes, size);
    pk_slab_free(fp->slab, kept_id, PK_FP_UUID_LEN);
    return -1;
  }
  memcpy(bytes, body + 6, size);
  struct pk_fp_entry *e = &fp->entries[slot];
  e->bytes = bytes;
  e->size = size;
  e->expires_at = 0;
  e->created_at = now;
  e->held = 1;
  fp->held++;
  fp->budget -= size;
  fp->puts[fp->puts_len++] = (uint32_t)slot;
  uint32_t info_len = flags & PK_FLAG_COMPACT ? pk_fp_put_compact(e, reply + PK_FRAME_HEADER)
                                              : pk_fp_put_info(e, reply + PK_FRAME_HEADER);
  pk_fp_header(reply, PK_OP_PUT, request, PK_FLAG_REPLY, info_len, 0);
  *out_size = size;
  return PK_FRAME_HEADER + info_len;
}

// Gives back the memory of objects put here once none is left; returns
// the regions unmapped. JS calls it when puts have paused.
PK_EXPORT int32_t pk_fp_trim(void *handle) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  int32_t count = pk_slab_trim(fp->slab);
  pthread_mutex_unlock(&fp->lock);
  return count;
}

// The memory of objects put here, into `out`: bytes of the regions holding
// them, bytes of the spares faulted in ahead, bytes of the chunks handed out,
// then regions faulted in ahead by the slab's thread, and faulted in on the
// receive for want of a ready one, since the start.
PK_EXPORT int32_t pk_fp_put_memory(void *handle, double *out) {
  struct pk_fp *fp = handle;
  for (int i = 0; i < 5; i++) out[i] = 0;
  pthread_mutex_lock(&fp->lock);
  struct pk_slab *slab = fp->slab;
  if (slab != NULL) {
    out[0] = (double)slab->regions_len * PK_SLAB_REGION;
    out[2] = (double)slab->used;
    out[4] = (double)slab->faulted_here;
    pthread_mutex_lock(&slab->spare_lock);
    out[1] = (double)slab->spare_len * PK_SLAB_REGION;
    out[3] = (double)slab->faulted_ahead;
    pthread_mutex_unlock(&slab->spare_lock);
  }
  pthread_mutex_unlock(&fp->lock);
  return 0;
}

// Gives the object put here in `e` its memfd, sealed for good, unless it
// has one. With `limited`, refuses past the most memfds JS allows (-EMFILE).
// Returns 0 or -errno. Locked.
static int32_t pk_fp_memfd_here(struct pk_fp *fp, struct pk_fp_entry *e, int limited) {
  if (e->fd >= 0) return 0;
  if (e->bytes == NULL) return -ENOENT;
  if (limited && fp->memfds >= fp->max_memfds) return -EMFILE;
  int fd = memfd_create("packice", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  uint64_t done = 0;
  while (done < e->size) {
    ssize_t n = pwrite(fd, e->bytes + done, e->size - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int error = n < 0 ? errno : EIO;
      close(fd);
      return -error;
    }
    done += (uint64_t)n;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  e->fd = fd;
  fp->memfds++;
  return 0;
}

// Answers the DELETE frame `request` of an object put here that JS holds
// (its id the body), its reply frame written into `reply` (`room` bytes):
// the object leaves lookups, and JS is told (pk_fp_take_deletes). Returns
// the reply's length; -1 when the frame is JS's. Locked.
static int64_t pk_fp_delete_here(struct pk_fp *fp, uint32_t request, const uint8_t *body,
                                 uint32_t body_len, uint8_t *reply, uint32_t room) {
  if (!fp->deletes || fp->closing || room < PK_FRAME_HEADER || body_len != PK_FP_UUID_LEN) {
    return -1;
  }
  uint32_t slot = pk_fp_find(fp, body, body_len);
  if (slot == PK_FP_NONE) return -1;
  struct pk_fp_entry *e = &fp->entries[slot];
  if (e->bytes == NULL || !e->held) return -1;
  if (fp->deleted_len == fp->deleted_cap) {
    uint32_t cap = fp->deleted_cap == 0 ? 256 : fp->deleted_cap * 2;
    uint32_t *deleted = realloc(fp->deleted, cap * sizeof *deleted);
    if (deleted == NULL) return -1;
    fp->deleted = deleted;
    fp->deleted_cap = cap;
  }
  pk_fp_index_remove(fp, slot);
  e->removed = 1;
  fp->deleted[fp->deleted_len++] = slot;
  pk_fp_header(reply, PK_OP_DELETE, request, PK_FLAG_REPLY, 0, 0);
  return PK_FRAME_HEADER;
}

// Sets the bytes new objects put here may take (room the peer lent), the
// most memfds made here for OPENs of them, and whether DELETEs of them are
// answered here (`deletes` 1).
PK_EXPORT int32_t pk_fp_budget(void *handle, double bytes, uint32_t max_memfds,
                               int32_t deletes) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  fp->budget = fp->closing || !(bytes > 0) ? 0 : (uint64_t)bytes;
  fp->max_memfds = max_memfds;
  fp->deletes = !fp->closing && deletes == 1;
  pthread_mutex_unlock(&fp->lock);
  return 0;
}

// Writes the slot of each object put here and deleted here since the last
// call, oldest first, at most `max`; returns how many. They are out of
// lookups: JS takes them out of the peer's.
PK_EXPORT int32_t pk_fp_take_deletes(void *handle, uint32_t *out, int32_t max) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  uint32_t count = fp->deleted_len < (uint32_t)max ? fp->deleted_len : (uint32_t)max;
  memcpy(out, fp->deleted, count * sizeof *out);
  fp->deleted_len -= count;
  if (fp->deleted_len > 0) {
    memmove(fp->deleted, fp->deleted + count, fp->deleted_len * sizeof *fp->deleted);
  }
  pthread_mutex_unlock(&fp->lock);
  return (int32_t)count;
}

// Writes a record (PK_FP_PUT_RECORD bytes: slot u32, size u32, created at
// f64 epoch ms, the 36 bytes of the id, the serial u32) for each object put here since the
// last call, oldest first, at most `max`; returns how many. JS holds their
// bytes from then on.
PK_EXPORT int32_t pk_fp_take_puts(void *handle, uint8_t *out, int32_t max) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  uint32_t count = fp->puts_len < (uint32_t)max ? fp->puts_len : (uint32_t)max;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t slot = fp->puts[i];
    struct pk_fp_entry *e = &fp->entries[slot];
    uint8_t *record = out + (size_t)i * PK_FP_PUT_RECORD;
    uint32_t size = (uint32_t)e->size;
    memcpy(record, &slot, 4);
    memcpy(record + 4, &size, 4);
    memcpy(record + 8, &e->created_at, 8);
    memcpy(record + 16, e->id, PK_FP_UUID_LEN);
    memcpy(record + 52, &e->serial, 4);
  }
  fp->puts_len -= count;
  if (fp->puts_len > 0) memmove(fp->puts, fp->puts + count, fp->puts_len * sizeof *fp->puts);
  pthread_mutex_unlock(&fp->lock);
  return (int32_t)count;
}

// The slot of the object put here with id `id` (`len` bytes) whose bytes JS
// holds, in lookups: JS takes it in by its record; -ENOENT when none is.
PK_EXPORT int32_t pk_fp_slot_of(void *handle, const uint8_t *id, uint32_t len) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  uint32_t slot = pk_fp_find(fp, id, len);
  int32_t result = -ENOENT;
  if (slot != PK_FP_NONE) {
    struct pk_fp_entry *e = &fp->entries[slot];
    if (e->bytes != NULL && e->held) result = (int32_t)slot;
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// The object put here in `slot`, while JS holds its bytes; NULL otherwise. Locked.
static struct pk_fp_entry *pk_fp_held(struct pk_fp *fp, uint32_t slot) {
  if (slot >= fp->entry_used) return NULL;
  struct pk_fp_entry *e = &fp->entries[slot];
  return e->live && e->held && e->bytes != NULL ? e : NULL;
}

// Copies `len` bytes from `offset` of the object put here in `slot` into
// `out`: 0, -ENOENT when JS holds no such object, -ERANGE outside it.
PK_EXPORT int32_t pk_fp_copy(void *handle, uint32_t slot, uint64_t offset, uint8_t *out,
                             uint64_t len) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  struct pk_fp_entry *e = pk_fp_held(fp, slot);
  int32_t result = 0;
  if (e == NULL) result = -ENOENT;
  else if (offset > e->size || len > e->size - offset) result = -ERANGE;
  else memcpy(out, e->bytes + offset, len);
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// A new descriptor of the sealed memfd of the object put here in `slot`
// (made now if it has none), JS's to close; -errno otherwise.
PK_EXPORT int32_t pk_fp_memfd(void *handle, uint32_t slot) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  struct pk_fp_entry *e = pk_fp_held(fp, slot);
  int32_t result = e == NULL ? -ENOENT : pk_fp_memfd_here(fp, e, 0);
  if (result == 0) {
    result = fcntl(e->fd, F_DUPFD_CLOEXEC, 0);
    if (result < 0) result = -errno;
  }
  pthread_mutex_unlock(&fp->lock);
  return result;
}

// JS lets go of the bytes of the object put here in `slot`. Returns 1 when
// the entry is freed at once (JS forgets the slot), 0 when later (a drain
// tells), -ENOENT when JS held none there. The last let-go of a closed
// table frees it.
PK_EXPORT int32_t pk_fp_unhold(void *handle, uint32_t slot) {
  struct pk_fp *fp = handle;
  pthread_mutex_lock(&fp->lock);
  struct pk_fp_entry *e = pk_fp_held(fp, slot);
  int32_t result;
  if (e == NULL) {
    result = -ENOENT;
  } else {
    e->held = 0;
    fp->held--;
    if (fp->closing || pk_fp_entry_done(e)) {
      pk_fp_entry_free(fp, slot);
      result = 1;
    } else {
      result = 0;
    }
  }
  int destroy = fp->closing && fp->held == 0;
  pthread_mutex_unlock(&fp->lock);
  if (destroy) pk_fp_destroy(fp);
  return result;
}
