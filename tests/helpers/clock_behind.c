/*
 * A wall clock behind for one process in tests: LD_PRELOADed into a
 * redis-server, it sets gettimeofday, time and clock_gettime of the
 * real-time clocks back by PACKICE_CLOCK_BEHIND_US microseconds, as on a
 * host whose clock is behind. Monotonic clocks are left as they are. Never
 * part of libpackice: tests/helpers/redis_cluster.ts builds it with cc.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long behind_ns;

__attribute__((constructor)) static void clock_behind_init(void) {
  const char *value = getenv("PACKICE_CLOCK_BEHIND_US");
  behind_ns = value == NULL ? 0 : atoll(value) * 1000LL;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  long rc = syscall(SYS_clock_gettime, id, ts);
  if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec - behind_ns;
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
  }
  return (int)rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  (void)tz;
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = ts.tv_nsec / 1000;
  return 0;
}

time_t time(time_t *out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}
