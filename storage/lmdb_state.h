// DATA/LMDB_STATE: whether LMDB, written without sync (MDB_NOSYNC), can be trusted at the
// next start, and the rule that decides it (docs/PERSISTENCE.md, "When LMDB is trusted").
//
// A power cut (or an OS crash) may leave an LMDB written with MDB_NOSYNC torn: its meta page
// may point at pages that never reached the disk. A process crash cannot: the page cache
// survives it. So recovery trusts LMDB only when the last process using it stopped cleanly,
// or when it was opened in the current boot (Env::boot_id()):
//
//   "open <boot id>"   written (durably) by recover() before it changes LMDB
//   "clean <boot id>"  written by mark_lmdb_clean() after the final LMDB sync of a clean stop
//   "discard <boot id>" written (durably) by recover() before it deletes a trusted LMDB whose
//                      state machine must be rebuilt from the base snapshot (damage below the
//                      applied index, docs/PERSISTENCE.md): never trusted, so a crash before the
//                      fresh LMDB holds the snapshot rebuilds it again at the next start
//
// The file is a line of text replaced atomically: written to LMDB_STATE.tmp, fdatasynced,
// renamed, directory fsynced. A crash leaves the old marker or the new one, never a mix, and
// possibly a stale LMDB_STATE.tmp (overwritten at the next write).
#pragma once

#include <string>

#include "storage/env.h"
#include "storage/status.h"

namespace keyval {

enum class LmdbMarkerKind : uint8_t { missing, open, clean, discarding, unreadable };

struct LmdbMarker {
  LmdbMarkerKind kind = LmdbMarkerKind::missing;
  std::string boot_id;  // as recorded ("" when unknown or not recorded)
  std::string text;     // the file's content, for messages (unreadable markers)
};

// What recovery decided, and why (for the report and the log).
struct LmdbTrust {
  bool trusted = true;
  std::string reason;
};

Result<LmdbMarker> read_lmdb_marker(Env& env, const std::string& data_directory);
// "open <env.boot_id()>", durably: call before changing LMDB.
Status mark_lmdb_open(Env& env, const std::string& data_directory);
// "clean <env.boot_id()>", durably: call after the final LMDB sync of a clean stop (the
// store_indexer), and change LMDB no more in this process.
Status mark_lmdb_clean(Env& env, const std::string& data_directory);

// "discard <env.boot_id()>", durably: call before deleting an LMDB that was trusted, when its
// state machine is to be rebuilt; then "open" once the fresh LMDB holds the base snapshot.
Status mark_lmdb_discarding(Env& env, const std::string& data_directory);

// The rule. LMDB is trusted when the marker says clean; or says open with a boot id that is
// known (non-empty) and equal to `current_boot_id`; or is missing while the WAL has no
// segments (a brand-new directory) or has segments (a directory written before LMDB_STATE
// existed: trusted, as every build before this one did). An unknown boot id ("", either
// recorded or current) is never taken to be the same boot: without a way to tell a process
// crash from a power cut, LMDB is rebuilt (slower, never wrong). A discard marker is never
// trusted: a rebuild of the state machine was under way. Anything else: not trusted.
LmdbTrust decide_lmdb_trust(const LmdbMarker& marker, const std::string& current_boot_id, bool wal_exists);

}  // namespace keyval
