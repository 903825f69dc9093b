// Test support only, never part of libpackice: a thread that changes a memfd
// while a daemon takes it over, as a hostile client would. Built by
// tests/helpers/hostile_fd.ts with `cc -shared -pthread`.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct hf_race {
  pthread_t thread;
  atomic_int stop;
  int fd;
  int mode;
  int64_t a;
  int64_t b;
  int64_t rounds;
};

// Mode 0: ftruncate between `a` and `b` bytes until stopped.
// Mode 1: after `a` rounds of spinning, add the seals `b` once, then idle.
static void *hf_run(void *arg) {
  struct hf_race *race = arg;
  while (!atomic_load_explicit(&race->stop, memory_order_relaxed)) {
    race->rounds++;
    if (race->mode == 0) {
      ftruncate(race->fd, race->a);
      ftruncate(race->fd, race->b);
    } else if (race->rounds == race->a) {
      fcntl(race->fd, F_ADD_SEALS, (int)race->b);
    }
  }
  return NULL;
}

// Starts the thread; NULL on failure.
void *hf_race_start(int32_t fd, int32_t mode, int64_t a, int64_t b) {
  struct hf_race *race = calloc(1, sizeof *race);
  if (race == NULL) return NULL;
  race->fd = fd;
  race->mode = mode;
  race->a = a;
  race->b = b;
  if (pthread_create(&race->thread, NULL, hf_run, race) != 0) {
    free(race);
    return NULL;
  }
  return race;
}

// Stops and joins the thread; returns how many rounds it ran.
int64_t hf_race_stop(void *handle) {
  struct hf_race *race = handle;
  atomic_store(&race->stop, 1);
  pthread_join(race->thread, NULL);
  int64_t rounds = race->rounds;
  free(race);
  return rounds;
}

// open(2) of `path` with `flags`; the fd or -errno.
int32_t hf_open(const char *path, int32_t flags) {
  int fd = open(path, flags | O_CLOEXEC, 0600);
  return fd < 0 ? -errno : fd;
}

// A pipe: its read end in out[0], its write end in out[1]; 0 or -errno.
int32_t hf_pipe(int32_t *out) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return -errno;
  out[0] = fds[0];
  out[1] = fds[1];
  return 0;
}

// An unconnected Unix stream socket; the fd or -errno.
int32_t hf_socket(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}
