// The one place where LMDB return codes become Status values, so every caller
// reports LMDB failures with the same codes and the same message shape:
// "lmdb <what>: <mdb_strerror(rc)>", where <what> names the operation, the
// directory, the database and the key or index involved.
#pragma once

#include <string>

#include "storage/status.h"

namespace keyval {

// Translates `rc` (an MDB_* code or an errno value from LMDB) for the operation `what`.
//   0                                   ok
//   MDB_NOTFOUND                        not_found
//   MDB_MAP_FULL                        no_space, recognised by is_map_full() (the store grows the map)
//   ENOSPC, EDQUOT                      no_space (the disk itself is full)
//   MDB_CORRUPTED, MDB_PAGE_NOTFOUND,
//   MDB_INVALID                         corruption
//   MDB_VERSION_MISMATCH                unsupported (another LMDB build's lock file format)
//   anything else                       io_error
Status lmdb_status(int rc, const std::string& what);

// True when `status` is lmdb_status(MDB_MAP_FULL, ...): the map, not the disk, is full,
// so growing the map with mdb_env_set_mapsize and retrying can succeed.
bool is_map_full(const Status& status);

}  // namespace keyval
