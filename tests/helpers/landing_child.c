// A receiver for tests/p2p/landing_memory_test.ts, in C so that it needs no
// memory of its own while the memory cgroup it runs in has none left: asks
// 127.0.0.1:PORT for a body of LENGTH bytes through libpackice's Range
// receiver and lands it in a new memfd with pk_http_recv_fd, then prints
// "result R write_error E" (R the call's result, E the errno of the write
// that ended it, or 0).
//
// Usage: landing_child LIBPACKICE PORT LENGTH
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// Offsets in struct pk_http (native/ffi.ts HTTP_LAYOUT).
#define WRITE_ERROR 12
#define REQUEST 48

// Written before the body comes: once the cgroup is full, even a page of
// stdio's buffer would wait for memory.
static char out[128];

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  memset(out, 0, sizeof out);
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (lib == NULL) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  int32_t (*open_)(const char *, int32_t, uint64_t *) = dlsym(lib, "pk_http_open");
  int32_t (*request)(void *, uint32_t, int32_t) = dlsym(lib, "pk_http_request");
  int64_t (*recv_fd)(void *, int32_t, int64_t, uint64_t, int32_t, int32_t) =
      dlsym(lib, "pk_http_recv_fd");
  if (open_ == NULL || request == NULL || recv_fd == NULL) return 2;
  uint64_t length = strtoull(argv[3], NULL, 10);
  int fd = memfd_create("packice", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, (off_t)length) < 0) return 2;
  uint64_t handle;
  if (open_("127.0.0.1", atoi(argv[2]), &handle) < 0) return 2;
  char *c = (char *)(uintptr_t)handle;
  int n = snprintf(c + REQUEST, 4096, "GET /body HTTP/1.1\r\nhost: test\r\n\r\n");
  if (request(c, (uint32_t)n, 10000) < 0) return 2;
  int64_t result = recv_fd(c, fd, 0, length, 10000, 3);
  int32_t write_error;
  memcpy(&write_error, c + WRITE_ERROR, sizeof write_error);
  // Its pages go back first: a full cgroup has no page for the pipe the result goes to either.
  close(fd);
  int length_out = snprintf(out, sizeof out, "result %lld write_error %d\n", (long long)result,
                            write_error);
  return write(1, out, (size_t)length_out) == length_out ? 0 : 2;
}
