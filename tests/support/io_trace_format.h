/* The I/O trace written by tests/support/io_trace_shim.c and read by crash_states.cc: one
 * record per file-system call a process made on a file under the traced directory, in the
 * order the calls returned. Shared by the C shim and the C++ reader, so plain C.
 *
 * File: records back to back, each
 *
 *   IoTraceRecord   (fixed 64 bytes, little-endian as the machine)
 *   path            path_bytes bytes, no terminator: the file (or directory) the call named
 *   second path     path2_bytes bytes: rename's target
 *   data            data_bytes bytes: what a write wrote
 *
 * A record is written with one write() after the call it describes returned successfully
 * (failed calls are not recorded): a sync record means the sync had completed. Sequence
 * numbers and times (CLOCK_MONOTONIC, nanoseconds) are taken under one lock, so both grow
 * along the file. A process killed mid-record leaves a torn last record: readers drop it.
 */
#ifndef KEYVAL_TESTS_SUPPORT_IO_TRACE_FORMAT_H
#define KEYVAL_TESTS_SUPPORT_IO_TRACE_FORMAT_H

#include <stdint.h>

#define IO_TRACE_MAGIC 0x4b56494fu /* "OIVK" */

/* The environment variables the shim reads at load. */
#define IO_TRACE_PATH_VARIABLE "KEYVAL_IO_TRACE"          /* the trace file to append to */
#define IO_TRACE_DIRECTORY_VARIABLE "KEYVAL_IO_TRACE_DIR" /* trace files under this directory */

enum IoTraceKind {
  io_trace_open = 1,      /* path, flags (O_CREAT, O_TRUNC, O_DSYNC...); fd */
  io_trace_write = 2,     /* path, fd, offset, data; flags IO_TRACE_WRITE_SYNCED on O_SYNC/O_DSYNC fds */
  io_trace_truncate = 3,  /* path, fd (-1 for truncate()), offset = the new size */
  io_trace_allocate = 4,  /* path, fd, offset + length: the size the file has at least now (mode 0) */
  io_trace_sync = 5,      /* path, fd: fsync, fdatasync or a whole-file sync_file_range */
  io_trace_rename = 6,    /* path -> path2 */
  io_trace_unlink = 7,    /* path (a file) */
  io_trace_mkdir = 8,     /* path */
  io_trace_rmdir = 9,     /* path */
  io_trace_close = 10     /* path, fd */
};

#define IO_TRACE_WRITE_SYNCED 1u /* the write went through an O_SYNC or O_DSYNC descriptor */

typedef struct IoTraceRecord {
  uint32_t magic;
  uint32_t kind;
  uint64_t sequence;
  uint64_t time_ns;
  int64_t fd;
  uint64_t offset;
  uint64_t length;    /* allocate: bytes from offset */
  uint32_t flags;     /* open: the open flags; write: IO_TRACE_WRITE_SYNCED */
  uint32_t path_bytes;
  uint32_t path2_bytes;
  uint32_t data_bytes;
} IoTraceRecord;

#ifdef __cplusplus
static_assert(sizeof(IoTraceRecord) == 64, "the trace record header is 64 bytes");
#else
_Static_assert(sizeof(IoTraceRecord) == 64, "the trace record header is 64 bytes");
#endif

#endif
