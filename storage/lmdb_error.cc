// LMDB return codes to Status values (see lmdb_error.h for the table).
#include "storage/lmdb_error.h"

#include <lmdb.h>

#include <cerrno>

namespace keyval {
namespace {

std::string message_for(int rc, const std::string& what) {
  return "lmdb " + what + ": " + mdb_strerror(rc) + " (rc " + std::to_string(rc) + ")";
}

// The tail every MDB_MAP_FULL message ends with; what comes before it is caller text,
// so matching the tail cannot be fooled by a key or path that happens to contain it.
std::string map_full_tail() {
  return std::string(": ") + mdb_strerror(MDB_MAP_FULL) + " (rc " + std::to_string(MDB_MAP_FULL) + ")";
}

}  // namespace

Status lmdb_status(int rc, const std::string& what) {
  switch (rc) {
    case 0:
      return Status::ok();
    case MDB_NOTFOUND:
      return Status::not_found(message_for(rc, what));
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
      return Status::no_space(message_for(rc, what));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
      return Status::corruption(message_for(rc, what));
    case MDB_VERSION_MISMATCH:
      return Status::unsupported(message_for(rc, what));
    default:
      return Status::io_error(message_for(rc, what));
  }
}

bool is_map_full(const Status& status) {
  if (status.code() != Code::no_space) return false;
  const std::string tail = map_full_tail();
  const std::string& message = status.message();
  return message.size() >= tail.size() && message.compare(message.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace keyval
