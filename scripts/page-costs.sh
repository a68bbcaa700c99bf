#!/usr/bin/env bash
# page-costs.sh - what a fresh page of a RAM-backed file costs on this machine, written
# through a shared map (as LMDB's MDB_WRITEMAP does) against pwrite and a read through the
# map (LMDB without it), and what the munmap after it costs (docs/BENCHMARKS.md, "Simulator
# speed"). The simulator rebuilds its nodes' LMDB files in /dev/shm at nearly every restart,
# so these are its costs; on a virtual machine with shadow page tables each first write
# through a map traps.
#
#   scripts/page-costs.sh            500 pages of an 8 MiB file, 200 rounds
#   PAGES=100 scripts/page-costs.sh
#
# Knobs (env): PAGES=500 ROUNDS=200 DIR=/dev/shm (any directory; /dev/shm is what the
# simulator uses). Needs a C compiler (cc).
set -euo pipefail
PAGES=${PAGES:-500}; ROUNDS=${ROUNDS:-200}; DIR=${DIR:-/dev/shm}
[ -d "$DIR" ] || { echo "page-costs.sh: DIR=$DIR is not a directory" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/page_costs.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void fail(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
  const char *path = argv[1];
  const int pages = atoi(argv[2]), rounds = atoi(argv[3]);
  const size_t span = 8u << 20, page = 4096;
  if (pages <= 0 || (size_t)pages * page > span || rounds <= 0) {
    fprintf(stderr, "pages must be 1..%zu and rounds positive\n", span / page);
    return 2;
  }
  char buffer[4096];
  memset(buffer, 1, sizeof buffer);
  double map_write = 0, map_unmap = 0, pwrite_pages = 0, read_fault = 0, read_unmap = 0;
  volatile char sink = 0;
  for (int round = 0; round < rounds; ++round) {
    /* Through the map: every page's first store faults a fresh page in. */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, span) != 0) fail("open/ftruncate");
    char *map = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail("mmap");
    double start = now_us();
    for (int i = 0; i < pages; ++i) map[(size_t)i * page] = 1;
    double written = now_us();
    munmap(map, span);
    double unmapped = now_us();
    map_write += written - start;
    map_unmap += unmapped - written;
    close(fd);
    unlink(path);
    /* pwrite, then a read through a read-only map. */
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, span) != 0) fail("open/ftruncate");
    map = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail("mmap");
    start = now_us();
    for (int i = 0; i < pages; ++i) {
      if (pwrite(fd, buffer, page, (off_t)i * page) != (ssize_t)page) fail("pwrite");
    }
    written = now_us();
    for (int i = 0; i < pages; ++i) sink += map[(size_t)i * page];
    double read = now_us();
    munmap(map, span);
    unmapped = now_us();
    pwrite_pages += written - start;
    read_fault += read - written;
    read_unmap += unmapped - read;
    close(fd);
    unlink(path);
  }
  printf("{\"pages\":%d,\"rounds\":%d,\"map_write_us_per_page\":%.2f,\"map_munmap_us\":%.1f,"
         "\"pwrite_us_per_page\":%.2f,\"read_fault_us_per_page\":%.2f,\"read_munmap_us\":%.1f}\n",
         pages, rounds, map_write / rounds / pages, map_unmap / rounds, pwrite_pages / rounds / pages,
         read_fault / rounds / pages, read_unmap / rounds);
  return 0;
}
EOF
cc -O2 -o "$work/page_costs" "$work/page_costs.c"
"$work/page_costs" "$DIR/keyval-page-costs.$$" "$PAGES" "$ROUNDS"
