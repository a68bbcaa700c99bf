// DATA/LMDB_STATE (lmdb_state.h): reading, writing and the trust rule.
#include "storage/lmdb_state.h"

#include <algorithm>
#include <vector>

namespace keyval {
namespace {

const char* const marker_name = "LMDB_STATE";
const char* const marker_temp_name = "LMDB_STATE.tmp";
constexpr size_t marker_bytes_max = 4096;  // a word and a boot id; anything longer is not ours

Status write_marker(Env& env, const std::string& data_directory, const std::string& word) {
  const std::string text = word + " " + env.boot_id() + "\n";
  const std::string temp_path = join_path(data_directory, marker_temp_name);
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.open_file(temp_path, OpenMode::create_or_open));
  KV_RETURN_IF_ERROR(file->truncate(0));
  KV_RETURN_IF_ERROR(file->write_at(0, reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  KV_RETURN_IF_ERROR(file->sync_data());
  file.reset();
  KV_RETURN_IF_ERROR(env.rename(temp_path, join_path(data_directory, marker_name)));
  return env.sync_dir(data_directory);
}

}  // namespace

Result<LmdbMarker> read_lmdb_marker(Env& env, const std::string& data_directory) {
  LmdbMarker marker;
  const std::string path = join_path(data_directory, marker_name);
  if (!env.exists(path)) return marker;
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.open_file(path, OpenMode::read_only));
  KV_ASSIGN_OR_RETURN(uint64_t size, file->size());
  std::vector<uint8_t> bytes(static_cast<size_t>(std::min<uint64_t>(size, marker_bytes_max)));
  KV_ASSIGN_OR_RETURN(size_t got, file->read_at(0, bytes.data(), bytes.size()));
  marker.text.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(got));
  std::string line = marker.text;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  const size_t space = line.find(' ');
  const std::string word = line.substr(0, space);
  marker.boot_id = space == std::string::npos ? "" : line.substr(space + 1);
  const bool one_line = line.find('\n') == std::string::npos && size <= marker_bytes_max;
  if (one_line && space != std::string::npos && word == "open") {
    marker.kind = LmdbMarkerKind::open;
  } else if (one_line && space != std::string::npos && word == "clean") {
    marker.kind = LmdbMarkerKind::clean;
  } else if (one_line && space != std::string::npos && word == "discard") {
    marker.kind = LmdbMarkerKind::discarding;
  } else {
    marker.kind = LmdbMarkerKind::unreadable;
    marker.boot_id.clear();
  }
  return marker;
}

Status mark_lmdb_open(Env& env, const std::string& data_directory) { return write_marker(env, data_directory, "open"); }

Status mark_lmdb_clean(Env& env, const std::string& data_directory) {
  return write_marker(env, data_directory, "clean");
}

Status mark_lmdb_discarding(Env& env, const std::string& data_directory) {
  return write_marker(env, data_directory, "discard");
}

LmdbTrust decide_lmdb_trust(const LmdbMarker& marker, const std::string& current_boot_id, bool wal_exists) {
  switch (marker.kind) {
    case LmdbMarkerKind::clean: return LmdbTrust{true, ""};
    case LmdbMarkerKind::missing:
      if (!wal_exists) return LmdbTrust{true, ""};
      return LmdbTrust{true, "no LMDB_STATE (a directory written before it existed): LMDB trusted as before"};
    case LmdbMarkerKind::open:
      if (!marker.boot_id.empty() && marker.boot_id == current_boot_id) return LmdbTrust{true, ""};
      return LmdbTrust{false, "LMDB was open (not closed cleanly) in boot " +
                                  (marker.boot_id.empty() ? std::string("(unknown)") : marker.boot_id) +
                                  " and this is boot " +
                                  (current_boot_id.empty() ? std::string("(unknown)") : current_boot_id) +
                                  ": a power cut may have torn it"};
    case LmdbMarkerKind::discarding:
      return LmdbTrust{false, "LMDB was being discarded to rebuild the state machine from the base snapshot "
                              "(damage below the applied index) when the last start stopped"};
    case LmdbMarkerKind::unreadable: break;
  }
  return LmdbTrust{false, "LMDB_STATE holds \"" + marker.text.substr(0, 80) + "\", not a state this build wrote"};
}

}  // namespace keyval
