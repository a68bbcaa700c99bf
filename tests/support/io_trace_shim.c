/* An LD_PRELOAD library for the crash-state tests: records every call a process makes that
 * changes a file or a name under one directory (KEYVAL_IO_TRACE_DIR), with the bytes written,
 * to a trace file (KEYVAL_IO_TRACE); tests/support/crash_states.h builds the states a power
 * cut could leave from it. Format: io_trace_format.h.
 *
 * Why a shim and not the Env seam: the node is a separate process (`keyval node`), and LMDB
 * writes its files itself, below any seam of ours. The shim sees the WAL's and the snapshots'
 * calls through PosixEnv and LMDB's alike.
 *
 * Covered: open/openat/creat (and glibc's fortified and 64-bit names), write, pwrite, writev,
 * pwritev(2), ftruncate/truncate, fallocate/posix_fallocate, fsync, fdatasync,
 * sync_file_range, rename/renameat(2), unlink/unlinkat, mkdir/mkdirat, rmdir, close, dup*.
 * A call that could change a traced file by a way the trace cannot follow stops the process
 * with a message (abort): a writable shared mapping (but for LMDB's lock.mdb, a reader table
 * rebuilt at every open), copy_file_range and sendfile into a traced file, a descriptor past
 * the table. The test also replays the whole trace and compares it with the directory the
 * process left: a missed call shows there.
 *
 * Each record is written after the real call returned, under one mutex that also orders the
 * sequence numbers and CLOCK_MONOTONIC times. Failed calls are not recorded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "io_trace_format.h"

#define DESCRIPTORS_MAX 65536 /* descriptors at or above this are refused (abort) when traced */
#define IOVECS_MAX 1024       /* IOV_MAX on Linux */

static pthread_mutex_t trace_mutex = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;
static uint64_t trace_sequence = 0;
static char traced_directory[PATH_MAX];
static size_t traced_directory_bytes = 0;
/* Per descriptor: the traced path it was opened with (NULL: not traced) and its open flags. */
static char* descriptor_paths[DESCRIPTORS_MAX];
static int descriptor_flags[DESCRIPTORS_MAX];

/* --- the real functions ------------------------------------------------------------------ */

static int (*real_open)(const char*, int, ...);
static int (*real_openat)(int, const char*, int, ...);
static ssize_t (*real_write)(int, const void*, size_t);
static ssize_t (*real_pwrite)(int, const void*, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec*, int);
static ssize_t (*real_pwritev)(int, const struct iovec*, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec*, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char*, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off64_t, off64_t, unsigned int);
static int (*real_rename)(const char*, const char*);
static int (*real_renameat)(int, const char*, int, const char*);
static int (*real_renameat2)(int, const char*, int, const char*, unsigned int);
static int (*real_unlink)(const char*);
static int (*real_unlinkat)(int, const char*, int);
static int (*real_mkdir)(const char*, mode_t);
static int (*real_mkdirat)(int, const char*, mode_t);
static int (*real_rmdir)(const char*);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static void* (*real_mmap)(void*, size_t, int, int, int, off_t);
static ssize_t (*real_copy_file_range)(int, off64_t*, int, off64_t*, size_t, unsigned int);
static ssize_t (*real_sendfile)(int, int, off_t*, size_t);

/* Stops the process: the trace can no longer describe what it did. */
static void fail(const char* what, const char* detail) {
  char message[PATH_MAX + 256];
  int bytes = snprintf(message, sizeof message, "io_trace_shim: %s%s%s\n", what, detail ? ": " : "",
                       detail ? detail : "");
  if (bytes > 0 && real_write) (void)!real_write(STDERR_FILENO, message, (size_t)bytes);
  abort();
}

static void* find_real(const char* name) {
  void* found = dlsym(RTLD_NEXT, name);
  if (!found) fail("no such function to wrap", name);
  return found;
}

#define RESOLVE(name) \
  if (!real_##name) real_##name = find_real(#name)

static void resolve_all(void) {
  RESOLVE(write);
  RESOLVE(open);
  RESOLVE(openat);
  RESOLVE(pwrite);
  RESOLVE(writev);
  RESOLVE(pwritev);
  RESOLVE(pwritev2);
  RESOLVE(ftruncate);
  RESOLVE(truncate);
  RESOLVE(fallocate);
  RESOLVE(posix_fallocate);
  RESOLVE(fsync);
  RESOLVE(fdatasync);
  RESOLVE(sync_file_range);
  RESOLVE(rename);
  RESOLVE(renameat);
  RESOLVE(renameat2);
  RESOLVE(unlink);
  RESOLVE(unlinkat);
  RESOLVE(mkdir);
  RESOLVE(mkdirat);
  RESOLVE(rmdir);
  RESOLVE(close);
  RESOLVE(dup);
  RESOLVE(dup2);
  RESOLVE(dup3);
  RESOLVE(mmap);
  RESOLVE(copy_file_range);
  RESOLVE(sendfile);
}

__attribute__((constructor)) static void io_trace_start(void) {
  resolve_all();
  const char* trace_path = getenv(IO_TRACE_PATH_VARIABLE);
  const char* directory = getenv(IO_TRACE_DIRECTORY_VARIABLE);
  if (!trace_path || !directory) return; /* loaded but not asked to trace: a pass-through */
  traced_directory_bytes = strlen(directory);
  while (traced_directory_bytes > 1 && directory[traced_directory_bytes - 1] == '/') --traced_directory_bytes;
  if (directory[0] != '/' || traced_directory_bytes >= sizeof traced_directory) {
    fail(IO_TRACE_DIRECTORY_VARIABLE " must be an absolute path", directory);
  }
  memcpy(traced_directory, directory, traced_directory_bytes);
  trace_fd = real_open(trace_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (trace_fd < 0) fail("cannot open the trace file", trace_path);
}

/* --- paths --------------------------------------------------------------------------------- */

/* The absolute form of `path` as seen from `dirfd`, into `out`; 0 when it cannot be formed. */
static int absolute_path(int dirfd, const char* path, char* out) {
  if (path[0] == '/') {
    if (strlen(path) >= PATH_MAX) return 0;
    strcpy(out, path);
    return 1;
  }
  char base[PATH_MAX];
  if (dirfd == AT_FDCWD) {
    if (!getcwd(base, sizeof base)) return 0;
  } else {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t bytes = readlink(link, base, sizeof base - 1);
    if (bytes <= 0) return 0;
    base[bytes] = '\0';
  }
  size_t base_bytes = strlen(base), path_bytes = strlen(path);
  if (base_bytes + 1 + path_bytes >= PATH_MAX) return 0;
  memcpy(out, base, base_bytes);
  out[base_bytes] = '/';
  memcpy(out + base_bytes + 1, path, path_bytes + 1);
  return 1;
}

static int is_traced(const char* absolute) {
  if (trace_fd < 0) return 0;
  if (strncmp(absolute, traced_directory, traced_directory_bytes) != 0) return 0;
  char next = absolute[traced_directory_bytes];
  return next == '\0' || next == '/';
}

/* The traced absolute path of (dirfd, path) into `out`, or 0 when it is not traced. */
static int traced_path(int dirfd, const char* path, char* out) {
  if (trace_fd < 0 || !path) return 0;
  return absolute_path(dirfd, path, out) && is_traced(out);
}

/* --- records -------------------------------------------------------------------------------- */

static void write_all_to_trace(const struct iovec* parts, int count) {
  struct iovec local[IOVECS_MAX + 3];
  memcpy(local, parts, sizeof(struct iovec) * (size_t)count);
  int first = 0;
  while (first < count) {
    ssize_t written = real_writev(trace_fd, local + first, count - first);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("cannot write the trace", strerror(errno));
    }
    size_t left = (size_t)written;
    while (first < count && left >= local[first].iov_len) left -= local[first++].iov_len;
    if (first < count) {
      local[first].iov_base = (char*)local[first].iov_base + left;
      local[first].iov_len -= left;
    }
  }
}

/* Appends one record; `data` holds `data_count` parts (a writev's). Caller holds no lock. */
static void record(uint32_t kind, int64_t fd, const char* path, const char* path2, uint64_t offset,
                   uint64_t length, uint32_t flags, const struct iovec* data, int data_count) {
  IoTraceRecord header;
  memset(&header, 0, sizeof header);
  header.magic = IO_TRACE_MAGIC;
  header.kind = kind;
  header.fd = fd;
  header.offset = offset;
  header.length = length;
  header.flags = flags;
  header.path_bytes = (uint32_t)strlen(path);
  header.path2_bytes = path2 ? (uint32_t)strlen(path2) : 0;
  uint64_t data_bytes = 0;
  for (int i = 0; i < data_count; ++i) data_bytes += data[i].iov_len;
  if (data_bytes > UINT32_MAX) fail("a write too large to trace", path);
  header.data_bytes = (uint32_t)data_bytes;
  if (data_count > IOVECS_MAX) fail("a writev of too many parts to trace", path);

  struct iovec parts[IOVECS_MAX + 3];
  int count = 0;
  parts[count++] = (struct iovec){&header, sizeof header};
  parts[count++] = (struct iovec){(void*)path, header.path_bytes};
  if (path2) parts[count++] = (struct iovec){(void*)path2, header.path2_bytes};
  for (int i = 0; i < data_count; ++i) parts[count++] = data[i];

  pthread_mutex_lock(&trace_mutex);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  header.sequence = ++trace_sequence;
  header.time_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  write_all_to_trace(parts, count);
  pthread_mutex_unlock(&trace_mutex);
}

/* The traced path of a descriptor (a copy into `out`), or 0. */
static int descriptor_path(int fd, char* out, int* flags) {
  if (trace_fd < 0 || fd < 0 || fd >= DESCRIPTORS_MAX) return 0;
  pthread_mutex_lock(&trace_mutex);
  const char* path = descriptor_paths[fd];
  if (path) {
    strcpy(out, path);
    if (flags) *flags = descriptor_flags[fd];
  }
  pthread_mutex_unlock(&trace_mutex);
  return path != NULL;
}

static void follow_descriptor(int fd, const char* path, int flags) {
  if (fd >= DESCRIPTORS_MAX) fail("a traced file got a descriptor past the shim's table", path);
  char* copy = strdup(path);
  if (!copy) fail("out of memory", path);
  pthread_mutex_lock(&trace_mutex);
  free(descriptor_paths[fd]);
  descriptor_paths[fd] = copy;
  descriptor_flags[fd] = flags;
  pthread_mutex_unlock(&trace_mutex);
}

static void forget_descriptor(int fd) {
  if (fd < 0 || fd >= DESCRIPTORS_MAX) return;
  pthread_mutex_lock(&trace_mutex);
  free(descriptor_paths[fd]);
  descriptor_paths[fd] = NULL;
  pthread_mutex_unlock(&trace_mutex);
}

static void after_open(int fd, const char* path, int flags) {
  if (fd < 0) return;
  follow_descriptor(fd, path, flags);
  record(io_trace_open, fd, path, NULL, 0, 0, (uint32_t)flags, NULL, 0);
}

static uint32_t write_flags(int open_flags) {
  return (open_flags & (O_SYNC | O_DSYNC)) ? IO_TRACE_WRITE_SYNCED : 0;
}

/* --- opening --------------------------------------------------------------------------------- */

static mode_t mode_argument(int flags, va_list arguments) {
  return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(arguments, int) : 0;
}

static int traced_openat(int dirfd, const char* path, int flags, mode_t mode) {
  resolve_all();
  char absolute[PATH_MAX];
  int traced = traced_path(dirfd, path, absolute);
  if (traced && (flags & O_TMPFILE) == O_TMPFILE) fail("O_TMPFILE in a traced directory", absolute);
  int fd = real_openat(dirfd, path, flags, mode);
  if (traced) after_open(fd, absolute, flags);
  return fd;
}

int open(const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  return traced_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  return traced_openat(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  return traced_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  va_list arguments;
  va_start(arguments, flags);
  mode_t mode = mode_argument(flags, arguments);
  va_end(arguments);
  return traced_openat(dirfd, path, flags, mode);
}

/* glibc's _FORTIFY_SOURCE entry points. */
int __open_2(const char* path, int flags) { return traced_openat(AT_FDCWD, path, flags, 0); }
int __open64_2(const char* path, int flags) { return traced_openat(AT_FDCWD, path, flags, 0); }
int __openat_2(int dirfd, const char* path, int flags) { return traced_openat(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char* path, int flags) { return traced_openat(dirfd, path, flags, 0); }

int creat(const char* path, mode_t mode) { return traced_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode); }
int creat64(const char* path, mode_t mode) { return creat(path, mode); }

int close(int fd) {
  resolve_all();
  char path[PATH_MAX];
  int traced = descriptor_path(fd, path, NULL);
  int rc = real_close(fd);
  if (traced) {
    forget_descriptor(fd);
    record(io_trace_close, fd, path, NULL, 0, 0, 0, NULL, 0);
  }
  return rc;
}

static int after_dup(int old_fd, int new_fd) {
  char path[PATH_MAX];
  int flags = 0;
  if (new_fd >= 0 && descriptor_path(old_fd, path, &flags)) after_open(new_fd, path, flags & ~(O_CREAT | O_TRUNC));
  return new_fd;
}

int dup(int fd) {
  resolve_all();
  return after_dup(fd, real_dup(fd));
}

int dup2(int fd, int target) {
  resolve_all();
  forget_descriptor(target);
  return after_dup(fd, real_dup2(fd, target));
}

int dup3(int fd, int target, int flags) {
  resolve_all();
  forget_descriptor(target);
  return after_dup(fd, real_dup3(fd, target, flags));
}

/* --- writing ---------------------------------------------------------------------------------- */

static void after_write(int fd, const char* path, int open_flags, uint64_t offset, const struct iovec* parts,
                        int count, size_t written) {
  /* Record exactly the bytes that were written (a short write: the first `written`). */
  struct iovec done[IOVECS_MAX];
  int done_count = 0;
  size_t left = written;
  for (int i = 0; i < count && left > 0; ++i) {
    size_t take = parts[i].iov_len < left ? parts[i].iov_len : left;
    done[done_count++] = (struct iovec){parts[i].iov_base, take};
    left -= take;
  }
  record(io_trace_write, fd, path, NULL, offset, written, write_flags(open_flags), done, done_count);
}

/* Writes at the descriptor's position: the offset is where it stands after, less the bytes. */
static void after_positioned_write(int fd, const struct iovec* parts, int count, ssize_t written) {
  char path[PATH_MAX];
  int flags = 0;
  if (written <= 0 || !descriptor_path(fd, path, &flags)) return;
  off_t end = lseek(fd, 0, SEEK_CUR);
  if (end < 0) fail("cannot find the offset of a write to", path);
  after_write(fd, path, flags, (uint64_t)end - (uint64_t)written, parts, count, (size_t)written);
}

static void after_offset_write(int fd, const struct iovec* parts, int count, off_t offset, ssize_t written) {
  char path[PATH_MAX];
  int flags = 0;
  if (written <= 0 || !descriptor_path(fd, path, &flags)) return;
  after_write(fd, path, flags, (uint64_t)offset, parts, count, (size_t)written);
}

ssize_t write(int fd, const void* buffer, size_t bytes) {
  resolve_all();
  ssize_t written = real_write(fd, buffer, bytes);
  struct iovec part = {(void*)buffer, bytes};
  after_positioned_write(fd, &part, 1, written);
  return written;
}

ssize_t pwrite(int fd, const void* buffer, size_t bytes, off_t offset) {
  resolve_all();
  ssize_t written = real_pwrite(fd, buffer, bytes, offset);
  struct iovec part = {(void*)buffer, bytes};
  after_offset_write(fd, &part, 1, offset, written);
  return written;
}

ssize_t pwrite64(int fd, const void* buffer, size_t bytes, off64_t offset) { return pwrite(fd, buffer, bytes, offset); }

ssize_t writev(int fd, const struct iovec* parts, int count) {
  resolve_all();
  ssize_t written = real_writev(fd, parts, count);
  after_positioned_write(fd, parts, count, written);
  return written;
}

ssize_t pwritev(int fd, const struct iovec* parts, int count, off_t offset) {
  resolve_all();
  ssize_t written = real_pwritev(fd, parts, count, offset);
  after_offset_write(fd, parts, count, offset, written);
  return written;
}

ssize_t pwritev64(int fd, const struct iovec* parts, int count, off64_t offset) {
  return pwritev(fd, parts, count, offset);
}

ssize_t pwritev2(int fd, const struct iovec* parts, int count, off_t offset, int flags) {
  resolve_all();
  ssize_t written = real_pwritev2(fd, parts, count, offset, flags);
  if (offset == -1) {
    after_positioned_write(fd, parts, count, written);
  } else {
    after_offset_write(fd, parts, count, offset, written);
  }
  return written;
}

ssize_t pwritev64v2(int fd, const struct iovec* parts, int count, off64_t offset, int flags) {
  return pwritev2(fd, parts, count, offset, flags);
}

/* --- sizes --------------------------------------------------------------------------------- */

int ftruncate(int fd, off_t size) {
  resolve_all();
  int rc = real_ftruncate(fd, size);
  char path[PATH_MAX];
  if (rc == 0 && descriptor_path(fd, path, NULL)) record(io_trace_truncate, fd, path, NULL, (uint64_t)size, 0, 0, NULL, 0);
  return rc;
}

int ftruncate64(int fd, off64_t size) { return ftruncate(fd, size); }

int truncate(const char* name, off_t size) {
  resolve_all();
  char path[PATH_MAX];
  int traced = traced_path(AT_FDCWD, name, path);
  int rc = real_truncate(name, size);
  if (rc == 0 && traced) record(io_trace_truncate, -1, path, NULL, (uint64_t)size, 0, 0, NULL, 0);
  return rc;
}

int truncate64(const char* name, off64_t size) { return truncate(name, size); }

static void after_allocate(int fd, int mode, off_t offset, off_t length) {
  char path[PATH_MAX];
  if (!descriptor_path(fd, path, NULL)) return;
  if (mode != 0) fail("fallocate with a mode the trace does not model, on", path);
  record(io_trace_allocate, fd, path, NULL, (uint64_t)offset, (uint64_t)length, 0, NULL, 0);
}

int fallocate(int fd, int mode, off_t offset, off_t length) {
  resolve_all();
  int rc = real_fallocate(fd, mode, offset, length);
  if (rc == 0) after_allocate(fd, mode, offset, length);
  return rc;
}

int fallocate64(int fd, int mode, off64_t offset, off64_t length) { return fallocate(fd, mode, offset, length); }

/* glibc calls the system call itself here, not fallocate(): both names are wrapped. */
int posix_fallocate(int fd, off_t offset, off_t length) {
  resolve_all();
  int rc = real_posix_fallocate(fd, offset, length);
  if (rc == 0) after_allocate(fd, 0, offset, length);
  return rc;
}

int posix_fallocate64(int fd, off64_t offset, off64_t length) { return posix_fallocate(fd, offset, length); }

/* --- syncing ---------------------------------------------------------------------------------- */

static void after_sync(int fd, int rc) {
  char path[PATH_MAX];
  if (rc == 0 && descriptor_path(fd, path, NULL)) record(io_trace_sync, fd, path, NULL, 0, 0, 0, NULL, 0);
}

int fsync(int fd) {
  resolve_all();
  int rc = real_fsync(fd);
  after_sync(fd, rc);
  return rc;
}

int fdatasync(int fd) {
  resolve_all();
  int rc = real_fdatasync(fd);
  after_sync(fd, rc);
  return rc;
}

/* Only a whole-file wait-write-wait is a sync; a partial range or no wait is a hint (recorded as nothing). */
int sync_file_range(int fd, off64_t offset, off64_t bytes, unsigned int flags) {
  resolve_all();
  int rc = real_sync_file_range(fd, offset, bytes, flags);
  const unsigned int full = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  if (offset == 0 && bytes == 0 && (flags & full) == full) after_sync(fd, rc);
  return rc;
}

/* --- names ------------------------------------------------------------------------------------ */

static int traced_renameat2(int from_dirfd, const char* from, int to_dirfd, const char* to, unsigned int flags) {
  resolve_all();
  char from_path[PATH_MAX], to_path[PATH_MAX];
  int from_traced = traced_path(from_dirfd, from, from_path);
  int to_traced = traced_path(to_dirfd, to, to_path);
  if (from_traced != to_traced) fail("a rename into or out of the traced directory", from_traced ? from_path : to_path);
  /* RENAME_NOREPLACE, when it succeeds, did what rename does; an exchange or a whiteout is not modelled. */
  if (to_traced && (flags & ~RENAME_NOREPLACE) != 0) fail("renameat2 with flags the trace does not model, on", from_path);
  int rc = flags == 0 ? real_renameat(from_dirfd, from, to_dirfd, to) : real_renameat2(from_dirfd, from, to_dirfd, to, flags);
  if (rc == 0 && to_traced) record(io_trace_rename, -1, from_path, to_path, 0, 0, 0, NULL, 0);
  return rc;
}

int rename(const char* from, const char* to) { return traced_renameat2(AT_FDCWD, from, AT_FDCWD, to, 0); }
int renameat(int from_dirfd, const char* from, int to_dirfd, const char* to) {
  return traced_renameat2(from_dirfd, from, to_dirfd, to, 0);
}
int renameat2(int from_dirfd, const char* from, int to_dirfd, const char* to, unsigned int flags) {
  return traced_renameat2(from_dirfd, from, to_dirfd, to, flags);
}

static int traced_unlinkat(int dirfd, const char* name, int flags) {
  resolve_all();
  char path[PATH_MAX];
  int traced = traced_path(dirfd, name, path);
  int rc = real_unlinkat(dirfd, name, flags);
  if (rc == 0 && traced) record((flags & AT_REMOVEDIR) ? io_trace_rmdir : io_trace_unlink, -1, path, NULL, 0, 0, 0, NULL, 0);
  return rc;
}

int unlink(const char* name) { return traced_unlinkat(AT_FDCWD, name, 0); }
int unlinkat(int dirfd, const char* name, int flags) { return traced_unlinkat(dirfd, name, flags); }
int rmdir(const char* name) { return traced_unlinkat(AT_FDCWD, name, AT_REMOVEDIR); }

static int traced_mkdirat(int dirfd, const char* name, mode_t mode) {
  resolve_all();
  char path[PATH_MAX];
  int traced = traced_path(dirfd, name, path);
  int rc = real_mkdirat(dirfd, name, mode);
  if (rc == 0 && traced) record(io_trace_mkdir, -1, path, NULL, 0, 0, 0, NULL, 0);
  return rc;
}

int mkdir(const char* name, mode_t mode) { return traced_mkdirat(AT_FDCWD, name, mode); }
int mkdirat(int dirfd, const char* name, mode_t mode) { return traced_mkdirat(dirfd, name, mode); }

/* --- ways around the trace: refused ------------------------------------------------------------ */

static int is_lmdb_lock_file(const char* path) {
  size_t bytes = strlen(path);
  const char* name = "/lock.mdb";
  return bytes >= strlen(name) && strcmp(path + bytes - strlen(name), name) == 0;
}

void* mmap(void* address, size_t bytes, int protection, int flags, int fd, off_t offset) {
  resolve_all();
  char path[PATH_MAX];
  if ((protection & PROT_WRITE) && (flags & MAP_SHARED) && descriptor_path(fd, path, NULL) && !is_lmdb_lock_file(path)) {
    fail("a writable shared mapping of a traced file (its writes would not be traced)", path);
  }
  return real_mmap(address, bytes, protection, flags, fd, offset);
}

void* mmap64(void* address, size_t bytes, int protection, int flags, int fd, off64_t offset) {
  return mmap(address, bytes, protection, flags, fd, offset);
}

ssize_t copy_file_range(int in_fd, off64_t* in_offset, int out_fd, off64_t* out_offset, size_t bytes, unsigned int flags) {
  resolve_all();
  char path[PATH_MAX];
  if (descriptor_path(out_fd, path, NULL)) fail("copy_file_range into a traced file", path);
  return real_copy_file_range(in_fd, in_offset, out_fd, out_offset, bytes, flags);
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t bytes) {
  resolve_all();
  char path[PATH_MAX];
  if (descriptor_path(out_fd, path, NULL)) fail("sendfile into a traced file", path);
  return real_sendfile(out_fd, in_fd, offset, bytes);
}
