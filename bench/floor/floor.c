// SPDX-License-Identifier: Apache-2.0
// Attaches the named programs of floor.bpf.o, turns bpf_stats on, runs a shell command and prints
// each program's runs and ns per run: `floor OBJ PROG... -- COMMAND`.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int dash = 2;
  while (dash < argc && strcmp(argv[dash], "--") != 0) ++dash;
  if (argc < 4 || dash >= argc - 1) {
    fprintf(stderr, "usage: %s OBJ PROG... -- COMMAND\n", argv[0]);
    return 2;
  }
  struct bpf_object* obj = bpf_object__open_file(argv[1], NULL);
  if (obj == NULL) {
    fprintf(stderr, "floor: cannot open %s\n", argv[1]);
    return 1;
  }
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    int wanted = 0;
    for (int i = 2; i < dash; ++i) wanted |= strcmp(bpf_program__name(p), argv[i]) == 0;
    bpf_program__set_autoload(p, wanted);
  }
  if (bpf_object__load(obj) != 0) {
    fprintf(stderr, "floor: cannot load %s\n", argv[1]);
    return 1;
  }
  for (int i = 2; i < dash; ++i) {
    p = bpf_object__find_program_by_name(obj, argv[i]);
    if (p == NULL || bpf_program__attach(p) == NULL) {
      fprintf(stderr, "floor: cannot attach %s\n", argv[i]);
      return 1;
    }
  }
  const int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats < 0) {
    fprintf(stderr, "floor: cannot enable bpf_stats\n");
    return 1;
  }
  char cmd[8192] = "";
  for (int i = dash + 1; i < argc; ++i) {
    strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 2);
    strcat(cmd, " ");
  }
  const int rc = system(cmd);
  for (int i = 2; i < dash; ++i) {
    p = bpf_object__find_program_by_name(obj, argv[i]);
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) != 0) continue;
    printf("%s %llu %.1f\n", argv[i], (unsigned long long)info.run_cnt,
           info.run_cnt ? (double)info.run_time_ns / (double)info.run_cnt : 0.0);
  }
  close(stats);
  return rc == 0 ? 0 : 1;
}
