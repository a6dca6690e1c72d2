// SPDX-License-Identifier: Apache-2.0
// psidle N [COMM [GROUPS]]: forks N children that sleep in pause() (comm COMM, default "psidle";
// with GROUPS > 1, COMM-0 .. COMM-<GROUPS-1> in turn), prints "ready <n>" and waits; on
// SIGTERM/SIGINT/SIGHUP kills and reaps every child, then exits.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 0;
  const char *comm = argc > 2 ? argv[2] : "psidle";
  const int groups = argc > 3 ? atoi(argv[3]) : 1;
  pid_t *kids = calloc(n > 0 ? n : 1, sizeof *kids);
  pid_t self = getpid();
  struct sigaction sa = {0};
  sa.sa_handler = on_sig;
  sigaction(SIGTERM, &sa, 0); sigaction(SIGINT, &sa, 0); sigaction(SIGHUP, &sa, 0);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM); sigaddset(&block, SIGINT); sigaddset(&block, SIGHUP);
  sigprocmask(SIG_BLOCK, &block, &old);
  int made = 0;
  for (; made < n; made++) {
    pid_t p = fork();
    if (p < 0) { perror("psidle: fork"); break; }
    if (p == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != self) _exit(0);
      signal(SIGTERM, SIG_DFL); signal(SIGINT, SIG_IGN); signal(SIGHUP, SIG_IGN);
      sigprocmask(SIG_SETMASK, &old, 0);
      char name[64];  /* the kernel keeps 15 bytes */
      if (groups > 1) snprintf(name, sizeof name, "%s-%d", comm, made % groups);
      else snprintf(name, sizeof name, "%s", comm);
      prctl(PR_SET_NAME, name);
      for (;;) pause();
    }
    kids[made] = p;
  }
  printf("ready %d\n", made);
  fflush(stdout);
  while (!stop) sigsuspend(&old);
  for (int i = 0; i < made; i++) kill(kids[i], SIGKILL);
  while (waitpid(-1, 0, 0) > 0 || errno == EINTR) {}
  return 0;
}
