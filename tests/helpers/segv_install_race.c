// For tests/native/sealed_write_report_test.ts: has THREADS threads, released
// together, each install libpackice's report of writes into sealed objects
// (pk_report_sealed_writes), as runtimes loading the library at once do,
// then makes a fault of another kind, which the report must hand to the
// handler installed before it: here one that exits with 0. A report
// installed twice takes itself for that handler, and the process never
// gets there (it calls itself forever). Each of TRIALS rounds runs in a new process; prints how
// many of them lost the handler.
//
// Usage: segv_install_race LIBPACKICE TRIALS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4

static pthread_barrier_t together;
static int32_t (*report)(void);

static void on_segv(int sig) {
  (void)sig;
  _exit(0);
}

static void *install(void *unused) {
  (void)unused;
  pthread_barrier_wait(&together);
  report();
  return NULL;
}

static int trial(void) {
  // A report that takes itself for the handler calls itself forever (a tail
  // call): the timer ends that.
  struct itimerval limit = {.it_value = {.tv_usec = 200000}};
  setitimer(ITIMER_REAL, &limit, NULL);
  struct sigaction prior;
  memset(&prior, 0, sizeof prior);
  prior.sa_handler = on_segv;
  sigemptyset(&prior.sa_mask);
  if (sigaction(SIGSEGV, &prior, NULL) < 0) return 2;
  pthread_barrier_init(&together, NULL, THREADS);
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, install, NULL);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  // A write into a page that allows none: not a sealed object's.
  volatile char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return 2;
  page[0] = 1;
  return 3;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int trials = atoi(argv[2]);
  // Loaded once: each trial's process starts with the report not installed.
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (lib == NULL) return 2;
  report = (int32_t (*)(void))dlsym(lib, "pk_report_sealed_writes");
  if (report == NULL) return 2;
  int lost = 0;
  for (int i = 0; i < trials; i++) {
    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) _exit(trial());
    int status;
    if (waitpid(child, &status, 0) < 0) return 2;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) return 2;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) lost++;
  }
  printf("lost %d of %d\n", lost, trials);
  return 0;
}
