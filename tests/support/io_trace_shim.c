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
 * with a message (abort): copy_file_range and sendfile into a traced file, a descriptor past
 * the table, a partial munmap of a traced mapping. The test also replays the whole trace and
 * compares it with the directory the process left: a missed call shows there.
 *
 * Writable shared mappings (LMDB's MDB_WRITEMAP; lock.mdb, a reader table rebuilt at every
 * open, is not followed). Stores through a mapping change the file without a call, so the shim
 * records them at the file's sync points: at msync(MS_SYNC) over the mapping (what LMDB's sync
 * is with MDB_WRITEMAP) and at fsync/fdatasync of the file, every page that differs from what
 * the trace last said of it is recorded as written, then the sync. Stores not yet synced are
 * not in the trace: a power cut is modelled as losing them all, one of the states a real cut
 * may leave (a relaxed LMDB is trusted after a cut only when a clean stop synced and marked it,
 * storage/lmdb_state.h). When a process maps a file its non-zero pages are recorded as written
 * (the page cache may hold stores of an earlier process that no sync recorded).
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
static int (*real_munmap)(void*, size_t);
static int (*real_msync)(void*, size_t, int);
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
  RESOLVE(munmap);
  RESOLVE(msync);
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

static void after_write_to_view(const char* path, int fd, uint64_t offset, size_t bytes);

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
  after_write_to_view(path, fd, offset, written);
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

static void record_mapped_stores(const char* path);

static void after_sync(int fd, int rc) {
  char path[PATH_MAX];
  if (rc != 0 || !descriptor_path(fd, path, NULL)) return;
  record_mapped_stores(path);  /* a sync writes back what stores dirtied too */
  record(io_trace_sync, fd, path, NULL, 0, 0, 0, NULL, 0);
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

/* --- writable shared mappings ------------------------------------------------------------- */

#define MAPPINGS_MAX 16
#define TRACE_PAGE 4096
#define RUN_PAGES_MAX 256 /* pages per write record (1 MiB) */

struct Mapping {
  char* address; /* NULL: free slot */
  size_t bytes;
  uint64_t offset;
  int fd;        /* the descriptor it was mapped from (pwrites read back through pread) */
  char* path;
};
/* What the trace says of each page of a mapped file: a hash of its bytes (per path: a file
 * remapped at a new size keeps what was recorded). */
struct View {
  char* path; /* NULL: free slot */
  uint64_t* hashes;
  size_t pages;
};
static pthread_mutex_t mapping_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct Mapping mappings[MAPPINGS_MAX];
static struct View views[MAPPINGS_MAX];

static uint64_t page_hash(const unsigned char* page) {
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < TRACE_PAGE; i += 8) {
    uint64_t word;
    memcpy(&word, page + i, 8);
    hash = (hash ^ word) * 1099511628211ull;
    hash ^= hash >> 29;
  }
  return hash;
}

static uint64_t zero_page_hash(void) {
  static unsigned char zeros[TRACE_PAGE];
  return page_hash(zeros);
}

/* The view of `path`, created (every page unknown: hash 0) or grown to `pages`. Under mapping_mutex. */
static struct View* view_for(const char* path, size_t pages) {
  struct View* view = NULL;
  for (int i = 0; i < MAPPINGS_MAX && !view; ++i) {
    if (views[i].path && strcmp(views[i].path, path) == 0) view = &views[i];
  }
  for (int i = 0; i < MAPPINGS_MAX && !view; ++i) {
    if (!views[i].path) {
      view = &views[i];
      view->path = strdup(path);
      if (!view->path) fail("out of memory", path);
    }
  }
  if (!view) fail("too many mapped files to follow", path);
  if (view->pages < pages) {
    uint64_t* grown = realloc(view->hashes, pages * sizeof(uint64_t));
    if (!grown) fail("out of memory", path);
    memset(grown + view->pages, 0, (pages - view->pages) * sizeof(uint64_t));
    view->hashes = grown;
    view->pages = pages;
  }
  return view;
}

/* Records the pages of `mapping` in [first, last) whose bytes differ from the view (an unknown
 * page: when it is not zero) as writes, runs of adjacent pages in one record. Under mapping_mutex. */
static void record_changed_pages(const struct Mapping* mapping, size_t first, size_t last) {
  const size_t first_file_page = (size_t)(mapping->offset / TRACE_PAGE);
  struct View* view = view_for(mapping->path, first_file_page + mapping->bytes / TRACE_PAGE);
  const uint64_t zero = zero_page_hash();
  size_t run_start = 0, run_pages = 0;
  for (size_t page = first; page <= last; ++page) {
    int changed = 0;
    if (page < last) {
      const uint64_t hash = page_hash((const unsigned char*)mapping->address + page * TRACE_PAGE);
      uint64_t* known = &view->hashes[first_file_page + page];
      changed = *known == 0 ? hash != zero : hash != *known;
      *known = hash;
    }
    if (changed && run_pages > 0 && run_start + run_pages == page && run_pages < RUN_PAGES_MAX) {
      ++run_pages;
      continue;
    }
    if (run_pages > 0) {
      struct iovec part = {mapping->address + run_start * TRACE_PAGE, run_pages * TRACE_PAGE};
      record(io_trace_write, mapping->fd, mapping->path, NULL, mapping->offset + run_start * TRACE_PAGE,
             part.iov_len, 0, &part, 1);
    }
    run_start = page;
    run_pages = changed ? 1 : 0;
  }
}

/* A sync point of `path`: every mapping of it recorded. */
static void record_mapped_stores(const char* path) {
  pthread_mutex_lock(&mapping_mutex);
  for (int i = 0; i < MAPPINGS_MAX; ++i) {
    if (mappings[i].address && strcmp(mappings[i].path, path) == 0) {
      record_changed_pages(&mappings[i], 0, mappings[i].bytes / TRACE_PAGE);
    }
  }
  pthread_mutex_unlock(&mapping_mutex);
}

/* After a traced write to a mapped file: the view takes the pages it changed as recorded. */
static void after_write_to_view(const char* path, int fd, uint64_t offset, size_t bytes) {
  if (bytes == 0) return;
  pthread_mutex_lock(&mapping_mutex);
  struct View* view = NULL;
  for (int i = 0; i < MAPPINGS_MAX && !view; ++i) {
    if (views[i].path && strcmp(views[i].path, path) == 0) view = &views[i];
  }
  if (view) {
    unsigned char page[TRACE_PAGE];
    for (uint64_t p = offset / TRACE_PAGE; p <= (offset + bytes - 1) / TRACE_PAGE && p < view->pages; ++p) {
      memset(page, 0, sizeof page);
      if (pread(fd, page, sizeof page, (off_t)(p * TRACE_PAGE)) < 0) fail("cannot read back a write to", path);
      view->hashes[p] = page_hash(page);
    }
  }
  pthread_mutex_unlock(&mapping_mutex);
}

void* mmap(void* address, size_t bytes, int protection, int flags, int fd, off_t offset) {
  resolve_all();
  char path[PATH_MAX];
  const int followed = (protection & PROT_WRITE) && (flags & MAP_SHARED) && descriptor_path(fd, path, NULL) &&
                       !is_lmdb_lock_file(path);
  void* mapped = real_mmap(address, bytes, protection, flags, fd, offset);
  if (!followed || mapped == MAP_FAILED) return mapped;
  if (bytes % TRACE_PAGE != 0 || offset % TRACE_PAGE != 0) fail("a writable shared mapping not in whole pages of", path);
  pthread_mutex_lock(&mapping_mutex);
  struct Mapping* slot = NULL;
  for (int i = 0; i < MAPPINGS_MAX && !slot; ++i) {
    if (!mappings[i].address) slot = &mappings[i];
  }
  if (!slot) fail("too many writable shared mappings to follow", path);
  slot->path = strdup(path);
  if (!slot->path) fail("out of memory", path);
  slot->address = mapped;
  slot->bytes = bytes;
  slot->offset = (uint64_t)offset;
  slot->fd = fd;
  /* What this process finds mapped is taken as written now (pages the view already knows
   * are recorded only if they differ). */
  record_changed_pages(slot, 0, bytes / TRACE_PAGE);
  pthread_mutex_unlock(&mapping_mutex);
  return mapped;
}

/* Whether a followed mapping shares a byte with [start, end). */
static int overlaps(const struct Mapping* mapping, const char* start, const char* end) {
  return mapping->address && end > mapping->address && start < mapping->address + mapping->bytes;
}

int munmap(void* address, size_t bytes) {
  resolve_all();
  const char* start = address;
  const char* end = start + bytes;
  pthread_mutex_lock(&mapping_mutex);
  for (int i = 0; i < MAPPINGS_MAX; ++i) {
    struct Mapping* mapping = &mappings[i];
    if (!overlaps(mapping, start, end)) continue;
    if (start > mapping->address || end < mapping->address + mapping->bytes) {
      fail("a partial munmap of a followed mapping of", mapping->path);
    }
    /* Stores not synced stay in the page cache: the next mapping or sync of the file sees them. */
    free(mapping->path);
    memset(mapping, 0, sizeof *mapping);
  }
  pthread_mutex_unlock(&mapping_mutex);
  return real_munmap(address, bytes);
}

int msync(void* address, size_t bytes, int flags) {
  resolve_all();
  int rc = real_msync(address, bytes, flags);
  if (rc != 0 || !(flags & MS_SYNC)) return rc;
  const char* start = address;
  const char* end = start + bytes;
  char synced[MAPPINGS_MAX][PATH_MAX];
  int synced_count = 0;
  pthread_mutex_lock(&mapping_mutex);
  for (int i = 0; i < MAPPINGS_MAX; ++i) {
    struct Mapping* mapping = &mappings[i];
    if (!overlaps(mapping, start, end)) continue;
    const size_t first = start <= mapping->address ? 0 : (size_t)(start - mapping->address) / TRACE_PAGE;
    const size_t last_byte = end >= mapping->address + mapping->bytes ? mapping->bytes : (size_t)(end - mapping->address);
    record_changed_pages(mapping, first, (last_byte + TRACE_PAGE - 1) / TRACE_PAGE);
    strcpy(synced[synced_count++], mapping->path);
  }
  pthread_mutex_unlock(&mapping_mutex);
  for (int i = 0; i < synced_count; ++i) record(io_trace_sync, -1, synced[i], NULL, 0, 0, 0, NULL, 0);
  return rc;
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
